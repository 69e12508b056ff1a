"""Insights for a support lead: outcomes over time, topics of customer questions, knowledge gaps, curated answers."""
