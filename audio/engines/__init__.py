"""Text-to-speech engines: eSpeak NG (offline), gTTS (online, cached) and recorded voice."""
