"""Sentiment of customer messages and of news/comment feeds: scoring, training, evaluation, alert rules.

The default scorer works offline out of the box (packaged lexicons, English and Chinese); `assistant align
sentiment` trains a classifier (pretrained encoder + classification heads) that replaces it once it scores better.
"""

from assistant.sentiment.labels import LABELS, Sentiment

__all__ = ["LABELS", "Sentiment"]
