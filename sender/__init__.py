"""The sending end: capture frames, encode them, publish them over ZeroMQ."""
