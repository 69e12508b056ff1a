"""Personalised recommendations: the company's catalogue, what its customers did, recommenders that learn from it,
and the step that lets the chat model pick and explain items inside a conversation."""
