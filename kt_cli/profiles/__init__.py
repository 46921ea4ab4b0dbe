"""LLM profiles: prompts, LLM back-ends, the response cache and shareable profile files."""
