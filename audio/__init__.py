"""Bulletin audio: text-to-speech engines, recorded voice, mixing, loudness and the
delivery formats radio stations and chat groups receive.
"""
