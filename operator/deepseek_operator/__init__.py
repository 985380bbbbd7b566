"""deepseek-operator: serve DeepSeek models on your own GPU clusters with kopf."""

__version__ = "0.1.0"
