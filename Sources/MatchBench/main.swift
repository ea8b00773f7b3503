print("match-bench: not yet")
