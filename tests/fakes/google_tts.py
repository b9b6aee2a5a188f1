"""A fake of Google Translate's text-to-speech endpoint, at the requests layer.

gTTS posts each text chunk to ``batchexecute`` and scans the response line by line for
``jQ1olc","[\\"<base64 MP3>\\"]``; these helpers build exactly that, an empty body, or a
429, for the ``responses`` library.
"""

import base64

import responses

BATCHEXECUTE_URL = "https://translate.google.com/_/TranslateWebserverUi/data/batchexecute"


def speech_body(mp3: bytes) -> str:
    """A successful batchexecute answer carrying ``mp3``, shaped as Google sends it."""
    audio = base64.b64encode(mp3).decode("ascii")
    payload = f'[["wrb.fr","jQ1olc","[\\"{audio}\\"]",null,null,null,"generic"]]'
    return f')]}}\'\n\n{len(payload)}\n{payload}\n25\n[["e",4,null,null,150]]\n'


def answer_speech(mock: responses.RequestsMock, mp3: bytes) -> None:
    """Google answers the next request with speech."""
    mock.add(responses.POST, BATCHEXECUTE_URL, body=speech_body(mp3), status=200)


def answer_rate_limited(mock: responses.RequestsMock) -> None:
    """Google refuses the next request with 429 Too Many Requests."""
    mock.add(responses.POST, BATCHEXECUTE_URL, body="Too Many Requests", status=429)


def answer_empty(mock: responses.RequestsMock) -> None:
    """Google answers the next request with 200 and nothing in it."""
    mock.add(responses.POST, BATCHEXECUTE_URL, body="", status=200)
