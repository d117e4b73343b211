"""The commands' bodies (fit, test, curve, add-llm, study, sweep) and the one road from a
checkpoint back to its run's data (``runs.checkpoint``)."""
