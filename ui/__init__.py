"""Gradio views of `assistant`; each registers itself under the `assistant.views` entry-point group."""
