"""The default scorer: packaged lexicons, offline. VADER for English (and other Latin text), SnowNLP for Chinese."""

from __future__ import annotations

from assistant.sentiment.labels import Sentiment, from_probabilities, is_chinese

VADER_NEUTRAL_BAND = 0.05  # VADER's own recommendation for its compound score
SNOWNLP_NEUTRAL_BAND = 0.4  # |2p - 1| below it is neutral (p between 0.3 and 0.7)
SNOWNLP_MAX_CHARS = 100  # its pure-Python segmenter is the slow part; 100 characters: same accuracy


class LexiconScorer:
    """VADER compound score for non-Chinese text, SnowNLP's review-trained Bayes model for Chinese."""

    name = "lexicon"

    def __init__(self):
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._vader = SentimentIntensityAnalyzer()

    def score(self, texts: list[str], entities: list[str | None] | None = None) -> list[Sentiment]:
        """One result per text; a lexicon cannot tell entities apart, so `entities` is accepted and not used."""
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> Sentiment:
        if not text.strip():
            return from_probabilities({"negative": 0.0, "neutral": 1.0, "positive": 0.0})
        if is_chinese(text):
            from snownlp import SnowNLP

            signed, band = 2 * SnowNLP(text[:SNOWNLP_MAX_CHARS]).sentiments - 1, SNOWNLP_NEUTRAL_BAND
        else:
            signed, band = self._vader.polarity_scores(text)["compound"], VADER_NEUTRAL_BAND
        return _from_signed(signed, band)


def _from_signed(signed: float, band: float) -> Sentiment:
    """Pseudo-probabilities from a signed score; inside the neutral band, neutral wins."""
    strength = abs(signed)
    polar = "positive" if signed > 0 else "negative"
    other = "negative" if polar == "positive" else "positive"
    if strength < band:
        probabilities = {polar: strength / 2, other: 0.0, "neutral": 1 - strength / 2}
    else:
        probabilities = {polar: (1 + strength) / 2, other: 0.0, "neutral": (1 - strength) / 2}
    result = from_probabilities(probabilities)
    return Sentiment(result.label, round(signed, 4), result.probabilities)
