"""Pull request review: the diff → the model's findings → inline comments on the right diff lines.

diff.py shows the model the diff with head-side line numbers and knows which lines GitHub accepts
comments on; findings.py asks the model and reads its answer; handler.py is the job."""
