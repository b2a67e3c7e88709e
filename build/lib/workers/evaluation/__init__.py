"""`qwenfix bench`: the repair engine run over a task set, with what it solved, spent and how long it took."""
