"""Render benchmark: a 5-minute bulletin in three languages against the floor, and the
peak memory of a 60-minute programme.

Run::

    .venv/bin/python -m bench.render [--minutes 5] [--long-minutes 60]

The pipeline is :func:`audio.render_program` as a station gets it (eSpeak NG per item,
jingles, pauses, loudness to -23 LUFS with a true-peak ceiling, MP3 and OGG Opus, each
measured from the written file). The floor is the least any renderer must do: the same
script through eSpeak NG in one call, and one ffmpeg MP3 encode. Peak memory is the
resident high-water mark (VmHWM) of a fresh process rendering the long programme, with
the ffmpeg and eSpeak NG child processes reported apart.

Targets: pipeline <= 1.3 x the floor, >= 50 x real time, <= 400 MB for 60 minutes.
"""

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from audio import AudioPrefs, ProgramItem, Tags, Voices, render_program
from audio.ffmpeg import find_ffmpeg
from core.config import PROJECT_ROOT, Settings

# Sentences a bulletin would carry, about 40 words a paragraph; repeated to length.
PARAGRAPHS = {
    "en": "From Gajuri ward three: the drinking water tap at the bazaar has been dry for "
    "three weeks. The rural municipality says a repair team will replace the broken pipe "
    "before the festival, and the ward office will report back to the community.",
    "fr": "De Kohalpur, quartier sept : le forage du marché est en panne depuis trois "
    "semaines. La mairie annonce qu'une équipe remplacera la pompe avant la fin du mois, "
    "et le bureau du quartier rendra compte à la communauté.",
    "ne": "गजुरी वडा नम्बर तीनबाट: बजारको खानेपानीको धारा तीन हप्तादेखि सुकेको छ। "
    "गाउँपालिकाले चाडअघि नै फुटेको पाइप फेर्ने टोली पठाउने जनाएको छ, र वडा कार्यालयले "
    "समुदायलाई जानकारी दिनेछ।",
}
WORDS_PER_MINUTE = 150
TARGET_RATIO, TARGET_SPEED, TARGET_MEMORY_MB = 1.3, 50.0, 400.0


def script(language: str, minutes: float) -> list[ProgramItem]:
    """Paragraphs enough for about ``minutes`` of speech."""
    words = len(PARAGRAPHS[language].split())
    count = max(1, round(minutes * WORDS_PER_MINUTE / words))
    return [ProgramItem(PARAGRAPHS[language], language) for _ in range(count)]


def jingles() -> dict[str, Path | None]:
    folder = PROJECT_ROOT / "content" / "jingles"
    return {name: next(iter(folder.glob(f"{name}.*")), None) for name in ("intro", "outro")}


async def pipeline(items: list[ProgramItem], settings: Settings, out: Path) -> tuple[float, float]:
    """Seconds to render, and seconds of audio rendered (from the MP3 itself)."""
    voices = Voices(settings)
    started = time.perf_counter()
    result = await render_program(
        items,
        AudioPrefs(),
        voices=voices,
        workdir=out,
        out_dir=out,
        basename=f"bench-{items[0].language}",
        tags=Tags(title="bench", artist="bench", album="bench", language=items[0].language),
        **jingles(),
    )
    elapsed = time.perf_counter() - started
    mp3 = next(f for f in result.files if f.format == "mp3")
    return elapsed, mp3.duration_s


def floor(items: list[ProgramItem], settings: Settings, out: Path) -> float:
    """Seconds for eSpeak NG on the whole script at once plus one MP3 encode."""
    text = "\n\n".join(item.text for item in items)
    wav, mp3 = out / "floor.wav", out / "floor.mp3"
    voice = {"en": "en", "fr": "fr", "ne": "ne"}[items[0].language]
    started = time.perf_counter()
    subprocess.run(
        [settings.espeak_binary, "-v", voice, "-w", str(wav), "--stdin"],
        input=text.encode(),
        check=True,
    )
    subprocess.run(
        [
            find_ffmpeg(),
            "-v",
            "error",
            "-y",
            "-i",
            str(wav),
            "-c:a",
            "libmp3lame",
            "-b:a",
            "128k",
            "-ar",
            "44100",
            str(mp3),
        ],
        check=True,
    )
    return time.perf_counter() - started


def long_render(minutes: float) -> dict[str, float]:
    """Render one long programme in a fresh process and report its memory high-water."""
    child = subprocess.run(
        [sys.executable, "-m", "bench.render", "_long", "--long-minutes", str(minutes)],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
    )
    return json.loads(child.stdout.strip().splitlines()[-1])


def _long_main(minutes: float) -> None:
    settings = Settings(_env_file=None)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        _, seconds = asyncio.run(pipeline(script("en", minutes), settings, Path(folder)))
        elapsed = time.perf_counter() - started
    high_water_kb = next(
        int(line.split()[1])
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {
                "python_mb": high_water_kb / 1024,
                "children_max_mb": children_kb / 1024,
                "audio_s": seconds,
                "elapsed_s": elapsed,
            }
        )
    )


def main() -> None:
    """Run both measurements and print the figures with the targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="run", choices=["run", "_long"])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--long-minutes", type=float, default=60.0)
    parser.add_argument("--skip-long", action="store_true")
    args = parser.parse_args()
    if args.mode == "_long":
        _long_main(args.long_minutes)
        return

    settings = Settings(_env_file=None)
    print(f"render benchmark: {args.minutes:g}-minute bulletin in en, fr, ne")
    print(f"{'lang':<5}{'audio s':>9}{'pipeline s':>12}{'floor s':>9}{'ratio':>8}{'x real':>8}")
    totals = [0.0, 0.0, 0.0]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        for language in ("en", "fr", "ne"):
            items = script(language, args.minutes)
            base = floor(items, settings, out)
            elapsed, seconds = asyncio.run(pipeline(items, settings, out))
            totals = [totals[0] + seconds, totals[1] + elapsed, totals[2] + base]
            print(
                f"{language:<5}{seconds:9.1f}{elapsed:12.2f}{base:9.2f}{elapsed / base:8.2f}"
                f"{seconds / elapsed:8.1f}"
            )
    audio_s, pipeline_s, floor_s = totals
    ratio, speed = pipeline_s / floor_s, audio_s / pipeline_s
    print(f"{'all':<5}{audio_s:9.1f}{pipeline_s:12.2f}{floor_s:9.2f}{ratio:8.2f}{speed:8.1f}")
    print(
        f"ratio to floor {ratio:.2f} (target <= {TARGET_RATIO}: "
        f"{'MET' if ratio <= TARGET_RATIO else 'MISSED'}); real-time factor {speed:.1f}x "
        f"(target >= {TARGET_SPEED:g}x: {'MET' if speed >= TARGET_SPEED else 'MISSED'})"
    )

    if not args.skip_long:
        memory = long_render(args.long_minutes)
        print(
            f"{args.long_minutes:g}-minute programme: {memory['audio_s']:.0f} s of audio in "
            f"{memory['elapsed_s']:.1f} s; peak memory {memory['python_mb']:.0f} MB "
            f"(largest child process {memory['children_max_mb']:.0f} MB; target <= "
            f"{TARGET_MEMORY_MB:g} MB: "
            f"{'MET' if memory['python_mb'] <= TARGET_MEMORY_MB else 'MISSED'})"
        )


if __name__ == "__main__":
    main()
