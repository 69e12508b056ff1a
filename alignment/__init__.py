"""Alignment: transcripts and feedback -> SFT/DPO/KTO data, TRL trainers, evaluation (see DESIGN.md)."""
