"""conductor: a structured-concurrency runtime for long-running LLM agent sessions."""
