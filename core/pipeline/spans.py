"""Time spans read from a model's answer: the moments of the video it points at.

`read_spans(text, times=..., family=..., bounds=...)` is the one reader of every family's
answers; `format_spans(spans, fmt)` writes them as lines, JSON, SRT or WebVTT.

A number becomes a time only with a unit, a clock form, a range with a unit, a frame word or
a family's own marker; counts ("2 people"), years, versions and option letters never do, and
an answer that names no time gives []. Reading goes in passes, each claiming what it read so
that later passes skip it: the family's own forms, then JSON objects, bracketed pairs, frame
references and last the prose forms.

Forms, in the order they are read (form -> how it is read):

  FORM                                            READ AS
  molmo2: `<points coords="8.5 1 574 375;9.0 1 580 380">`, `<tracks coords=...>`
                                                  an instant per frame group: its first number
  `{"start": "00:21.00", "end": "00:49.00", "description": "..."}` (any JSON object)
                                                  start to end; its text: the description,
                                                  event, caption, text or label field
    start keys: start, start_time, begin, from, first_appears, onset ...
    end keys: end, end_time, stop, to, last_appears ...
                                                  a clock, a number with a unit, or a bare
                                                  number (seconds: the key is the marker)
    `{"time": "00:05-00:10"}`, `{"timestamp": 12.5}`  a range, or an instant
  qwen families: `[12.5, 20.0]`, `[[12.5, 20.0], [30, 35]]`
                                                  start to end in seconds (not after a key like
                                                  "point_2d": only a time-like key)
  `[12.5s, 20s]`, `[0:12, 0:20]`                  start to end
  `frame 3`, `Frame3` (InternVL's label), `frame #3`, `the 2nd frame`, `the third frame`,
  `the last frame`                                that frame's instant (1-based, as shown)
  `frames 4-6`, `frames 3 to 5`, `Frame2 to Frame4`
                                                  the first frame's time to the last one's end
  `frames 2, 3 and 5`                             each frame's instant
  `12.5s`, `12.5 sec`, `12.5 seconds`, `<12.0 seconds>` (Qwen3-VL's own marker)
                                                  an instant
  `2 minutes`, `1 hour`, `1 minute 5 seconds`, `1m05s`, `1h2m3s`, `1 hour, 2 minutes and 3 s`,
  `the 12-second mark`                            an instant (`5 m` alone: metres, not read)
  Chinese, as Qwen answers when asked in it: `12秒`, `2分钟`, `1分05秒`, `1小时`, `从12秒到15秒`
                                                  the same (`3分` alone: points, not read)
  `0:12`, `00:12.5`, `mm:ss.ff`, `1:02:03`, `h:mm:ss.mmm`, `00:01:05,500`
                                                  an instant (seconds below 60, and minutes
                                                  with hours; not before am/pm)
  qwen3 families: `<12.0>` (their processor writes `<t seconds>` before each frame group)
                                                  an instant
  A -, –, —, ~, -->, to, until, till, through, 到, 至 B; from A to B; between A and B
                                                  a range, when A or B has a unit or both are
                                                  clocks; a bare end takes the other's unit
                                                  (`3-5 seconds`, `from 2 to 3 minutes`);
                                                  `and` only after `between`; a reversed
                                                  range is read backwards
  `12.5 - 20.0` (no unit), `from 10 to 20`, `[12.5, 20.0]` (not qwen), percentages,
  `2 people`, `option B`, `version 3.5`, `2019`, `the 80s`, `1990s`, `3:30 pm`
                                                  not read
  a time after for, lasts, takes, every, each, duration, length, the first/last/next ...,
  or before long, later, earlier, apart, ago, before, after (and 持续, 每, 前, 长 ...; 后, 内 ...)
                                                  not read: a duration, or a time relative to
                                                  something else

Then: an instant t becomes [t, the next frame's time] with `times` ([t, t + the last frame
gap] at the end; [t, t] without times); spans are clamped to `bounds` and one wholly outside is
dropped (as is one clamping leaves empty); they are ordered, and overlapping or touching spans
merged, their texts joined. A span's text is the sentence (or line) it was read from, trimmed.

Work is bounded: the patterns are linear (bounded repeats, no nested ones), at most
`MAX_MATCHES` matches are looked at per pass and `MAX_READ` spans read from one answer.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from vidtt.errors import OptionsError
from vidtt.types.answers import Span
from vidtt.types.timeline import stamp

MAX_READ = 5000  # spans read from one answer, at most (the first ones)
MAX_MATCHES = 20_000  # pattern matches looked at per pass, at most
SPAN_FORMATS = ("lines", "json", "srt", "vtt")

# Families whose answers write times their own way (config.model_type).
QWEN = frozenset(
    {
        "qwen2_vl", "qwen2_5_vl", "qwen2_5_omni", "qwen3_vl", "qwen3_vl_moe",
        "qwen3_5", "qwen3_5_moe", "qwen3_omni_moe",
    }
)  # fmt: skip
QWEN3 = frozenset({"qwen3_vl", "qwen3_vl_moe", "qwen3_5", "qwen3_5_moe", "qwen3_omni_moe"})
MOLMO = frozenset({"molmo2"})

_NUM = r"\d{1,7}(?:\.\d{1,6})?"
_CLOCK = r"(?<![\d:.])(?:\d{1,2}:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?(?!\d|[:.,]\d)"
_END = r"(?![a-z])"  # a unit ends its word
_SEP = r"[\s,]{0,3}(?:and\s{1,3})?"
_H, _HW = r"(?:hours?|hrs?|h|个?小时)", r"(?:hours?|hrs?|个?小时)"
_M, _MW = r"(?:minutes?|mins?|m|分钟?)", r"(?:minutes?|mins?|分钟)"  # 分 alone: points
_S = r"(?:seconds?|secs?|s|秒钟?)"
_WORDS = (
    rf"(?<![A-Za-z0-9_.])(?:(?:{_NUM}\s?{_H}{_END}{_SEP})?(?:{_NUM}\s?{_M}{_END}{_SEP})?{_NUM}\s?{_S}{_END}"
    rf"|{_NUM}\s?{_H}{_END}{_SEP}{_NUM}\s?{_M}{_END}|{_NUM}\s?{_MW}{_END}|{_NUM}\s?{_HW}{_END}"
    rf"|{_NUM}-(?:seconds?|minutes?)(?=\s(?:mark|point|timestamp)))"  # the 12-second mark
)
_MARK = rf"<\s?{_NUM}\s?>"
_BARE = rf"(?<![A-Za-z0-9_.:]){_NUM}(?![A-Za-z0-9_:]|\.\d)"
_TE = rf"(?:{_CLOCK}|{_WORDS}|{_MARK}|{_BARE})"
_CONN = r"(?:-{1,2}>?|–|—|~|to|until|till|through|thru|and|到|至)(?![a-z])"
_RANGE = (
    rf"(?P<lead>(?:from|between)\s{{1,3}})?<?\s?(?P<a>{_TE})\s?>?"
    rf"\s{{0,3}}(?P<conn>{_CONN})\s{{0,3}}<?\s?(?P<b>{_TE})\s?>?"
)
_MAIN = re.compile(rf"{_RANGE}|(?P<t>{_CLOCK}|{_WORDS}|{_MARK})", re.I)
_PAIR = re.compile(
    rf"\[\s{{0,3}}<?\s?(?P<a>{_TE})\s?>?\s{{0,3}},\s{{0,3}}<?\s?(?P<b>{_TE})\s?>?\s{{0,3}}\]", re.I
)
_OBJECT = re.compile(r"\{[^{}]{1,4000}\}")
_KV = re.compile(
    r"""["']?([A-Za-z_]\w{0,30})["']?\s{0,3}:\s{0,3}"""
    r"""(?:"([^"\n]{0,400})"|'([^'\n]{0,400})'|(\d{1,7}(?:\.\d{1,6})?))"""
)
_POINTS = re.compile(
    r"<(?:points|tracks)\b[^<>\"]{0,40}coords=\"([\d\t:;,. ]{1,20000})\"([^<>]{0,400})>"
    r"([^<]{0,200})"
)
_POINT_GROUP = re.compile(rf"(?:^|[\t;,:])\s{{0,2}}({_NUM})\s(?=\d{{1,5}}\s\d{{1,5}}\s\d)")
_FRAME_NO = r"(?:frames?\s?)?(?:#|no\.?\s?|number\s)?\d{1,5}(?!\d|[:.]\d)"
_FRAMES = re.compile(
    rf"(?<!\w)frames?\s?(?:#|no\.?\s?|number\s)?(?P<n>\d{{1,5}})(?!\d|[:.]\d)"
    rf"(?P<list>(?:\s{{0,3}}(?:,|and|&)\s{{0,3}}{_FRAME_NO}){{0,64}})"
    rf"(?:\s{{0,3}}(?:-|–|—|to|through|thru|until)\s{{0,3}}(?P<last>{_FRAME_NO}))?",
    re.I,
)
_ORDINALS = (
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
    "tenth", "eleventh", "twelfth",
)  # fmt: skip
_ORDINAL_WORD = rf"(?<!\w)(?P<o>\d{{1,5}}(?:st|nd|rd|th)|{'|'.join(_ORDINALS)}|last|final)"
_ORDINAL = re.compile(rf"{_ORDINAL_WORD}\s{{1,3}}(?:video\s)?frame(?!\w)", re.I)
# Where a pass may match: its anchors (found fast), and what may stand just before one.
_DIGITS = re.compile(r"\d{1,7}")
_LEAD = re.compile(r"(?:(?:from|between)\s{1,3}<?\s?|<\s?)$", re.I)
_FRAME_WORD = re.compile(r"frame(?!\w)", re.I)
_ORDINAL_LEAD = re.compile(rf"{_ORDINAL_WORD}\s{{1,3}}(?:video\s)?$", re.I)

_CLOCK_PARTS = re.compile(r"(?:(\d{1,2}):)?(\d{1,2}):(\d{2})(?:[.,](\d{1,3}))?")
_UNIT_PART = re.compile(rf"({_NUM})[\s-]?([hms个小分秒])", re.I)
_SCALE = {"h": 3600.0, "个": 3600.0, "小": 3600.0, "m": 60.0, "分": 60.0, "s": 1.0, "秒": 1.0}
_DURATION_BEFORE = re.compile(
    r"(?:\b(?:for|lasts?|lasted|lasting|takes?|took|taking|duration(?:\s+of)?|length(?:\s+of)?|"
    r"every|each|spent|spends?|spend|totals?|totall?ing|first|last|next|past|previous|"
    r"another|remaining|within)[\s:]+(?:(?:about|around|approximately|approx\.|roughly|"
    r"nearly|almost|over|under|less\s+than|more\s+than|just|only|a|an|the|some)\s+)*"
    r"|(?:持续了?|用了|花了|历时|耗时|每隔?|时长为?|长度?为?|长达|前|最后|头)\s{0,2})$",
    re.I,
)
_DURATION_AFTER = re.compile(
    r"[\s>]{0,3}(?:(?:long|later|earlier|apart|ago|before|after|in\s+(?:length|duration|total)|"
    r"of\s+(?:footage|video|the\s+video|playback))\b|后|以后|之后|之前|长|内)",
    re.I,
)
_CLOCK_OF_DAY = re.compile(r"\s?(?:[ap]\.?m\b|o'clock)", re.I)
_DECADE = re.compile(r"(?:1\d|20)\d0s|\d0s", re.I)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|[。！？]|\n")
_TIME_KEY = re.compile(r"time|span|segment|interval|moment|window|range|stamp", re.I)
_KEY_BEFORE = re.compile(r"""["']?([A-Za-z_]\w{0,30})["']?\s{0,3}:\s{0,3}$""")
START_KEYS = frozenset(
    {
        "start", "start_time", "starttime", "start_sec", "start_seconds", "start_timestamp",
        "begin", "begin_time", "from", "first_appears", "onset",
    }
)  # fmt: skip
END_KEYS = frozenset(
    {
        "end", "end_time", "endtime", "end_sec", "end_seconds", "end_timestamp", "stop",
        "to", "last_appears",
    }
)  # fmt: skip
AT_KEYS = frozenset(
    {"time", "timestamp", "at", "moment", "span", "segment", "interval", "time_range", "timespan"}
)
TEXT_KEYS = (
    "description", "event", "caption", "text", "label", "sentence", "query", "action",
    "activity", "name", "content", "summary",
)  # fmt: skip
_WINDOW = 300  # characters looked at either side of a time for its sentence


@dataclass(slots=True)
class _Hit:
    start: float
    end: float
    text: str
    point: bool = False  # an instant kept as [t, t] (no frame times to give it a length)


def read_spans(
    text: str,
    *,
    times: Sequence[float] = (),
    family: str | None = None,
    bounds: tuple[float, float] | None = None,
) -> list[Span]:
    """The time spans `text` points at, ordered and merged; [] when it names no time.

    `times`: the seconds of the frames the model saw, in order (frame numbers are 1-based
    into them; an instant lasts until the next frame). `family`: the model's
    `config.model_type`, whose own ways of writing times are read first. `bounds`: the
    sampled range; spans are clamped to it. The forms read: this module's docstring."""
    if not text:
        return []
    frame_times = sorted(float(t) for t in times if math.isfinite(float(t)) and float(t) >= 0)
    reader = _Reader(text, frame_times, (family or "").strip().lower())
    return _finish(reader.read(), bounds)


class _Reader:
    """One answer's reading: the passes, what they claimed, and the hits so far."""

    def __init__(self, text: str, times: list[float], family: str) -> None:
        self.text = text
        self.masked = text
        self.times = times
        self.family = family
        self.hits: list[_Hit] = []

    def read(self) -> list[_Hit]:
        passes: list[tuple[re.Pattern[str], Callable[[re.Match[str]], bool]]] = []
        if self.family in MOLMO:
            passes.append((_POINTS, self._points))
        passes += [
            (_OBJECT, self._object),
            (_PAIR, self._pair),
            (_FRAMES, self._frames),
        ]
        for pattern, handle in passes:
            self._claim([m.span() for m in self._matches(pattern) if handle(m)])
        for pattern, anchor, lead, handle in (
            (_ORDINAL, _FRAME_WORD, _ORDINAL_LEAD, self._ordinal),
            (_MAIN, _DIGITS, _LEAD, self._main),
        ):
            self._claim([m.span() for m in self._anchored(pattern, anchor, lead) if handle(m)])
        return self.hits[:MAX_READ]

    def _matches(self, pattern: re.Pattern[str]) -> Iterator[re.Match[str]]:
        for count, match in enumerate(pattern.finditer(self.masked)):
            if count >= MAX_MATCHES or len(self.hits) >= MAX_READ:
                return
            yield match

    def _anchored(
        self, pattern: re.Pattern[str], anchor: re.Pattern[str], lead: re.Pattern[str]
    ) -> Iterator[re.Match[str]]:
        """`pattern`'s matches, tried only at its anchors (or the lead just before one):
        what `finditer` finds, without trying every position of a long answer."""
        text, done = self.masked, 0
        for count, spot in enumerate(anchor.finditer(text)):
            if count >= MAX_MATCHES or len(self.hits) >= MAX_READ:
                return
            if spot.start() < done:
                continue
            before = lead.search(text, max(done, spot.start() - 24), spot.start())
            m = pattern.match(text, before.start()) if before else None
            m = m or pattern.match(text, spot.start())
            if m is not None:
                done = m.end()
                yield m

    def _claim(self, spans: list[tuple[int, int]]) -> None:
        """Blank what a pass read (positions kept), so that later passes skip it."""
        if not spans:
            return
        pieces, at = [], 0
        for lo, hi in spans:
            pieces += [self.masked[at:lo], "\x00" * (hi - lo)]
            at = hi
        pieces.append(self.masked[at:])
        self.masked = "".join(pieces)

    # -- what a time becomes -------------------------------------------------------------

    def instant(self, t: float, text: str) -> None:
        """[t, the next frame's time]; [t, t + the last gap] after the last; [t, t] without."""
        if not self.times:
            self.hits.append(_Hit(t, t, text, point=True))
            return
        k = bisect.bisect_right(self.times, t)
        if k < len(self.times):
            end = self.times[k]
        elif len(self.times) > 1:
            end = t + (self.times[-1] - self.times[-2])
        else:
            end = t
        self.hits.append(_Hit(t, end, text, point=end == t))

    def span(self, a: float, b: float, text: str) -> None:
        start, end = min(a, b), max(a, b)  # a reversed range is read backwards
        if start == end:
            self.instant(start, text)
        else:
            self.hits.append(_Hit(start, end, text))

    def frame(self, number: int) -> tuple[float, float] | None:
        """Frame `number` (1-based)'s time and the next frame's (or its own plus the gap)."""
        if not 1 <= number <= len(self.times):
            return None
        t = self.times[number - 1]
        if number < len(self.times):
            return t, self.times[number]
        gap = self.times[-1] - self.times[-2] if len(self.times) > 1 else 0.0
        return t, t + gap

    def sentence(self, lo: int, hi: int) -> str:
        return _sentence(self.text, lo, hi)

    # -- the passes ----------------------------------------------------------------------

    def _points(self, m: re.Match[str]) -> bool:
        alt = re.search(r"alt=\"([^\"]{0,200})\"", m.group(2))
        text = " ".join(((alt.group(1) if alt else "") or m.group(3)).split())
        for group in _POINT_GROUP.finditer(m.group(1)):  # "time idx x y ...", one a frame
            self.instant(float(group.group(1)), text or self.sentence(*m.span()))
        return True

    def _object(self, m: re.Match[str]) -> bool:
        fields: dict[str, str] = {}
        for kv in _KV.finditer(m.group(0)):
            value = next(v for v in kv.group(2, 3, 4) if v is not None)
            fields.setdefault(kv.group(1).lower(), value.strip())
        start = _first(fields, START_KEYS)
        end = _first(fields, END_KEYS)
        at = _first(fields, AT_KEYS)
        said = next((fields[k] for k in TEXT_KEYS if fields.get(k)), "")
        text = " ".join(said.split()) or self.sentence(*m.span())
        a = _value(start) if start is not None else None
        if a is not None:
            b = _value(end) if end is not None else None
            self.span(a, a if b is None else b, text)
            return True
        if at is not None:
            return self._field_time(at, text)
        return False

    def _field_time(self, value: str, text: str) -> bool:
        """A JSON `time` value: a range ("00:05-00:10") or an instant; bare numbers count."""
        whole = _value(value)
        if whole is not None:
            self.instant(whole, text)
            return True
        m = _MAIN.fullmatch(value.strip())
        if m is None or m.group("a") is None:
            return False
        a, b = _value(m.group("a")), _value(m.group("b"))
        if a is None or b is None:
            return False
        self.span(a, b, text)
        return True

    def _pair(self, m: re.Match[str]) -> bool:
        key = _KEY_BEFORE.search(self.text, max(0, m.start() - 40), m.start())
        if key is not None and not _TIME_KEY.search(key.group(1)):
            return False  # "point_2d": [x, y], not times
        ends = _range_ends(m.group("a"), m.group("b"), self.family, bare=self.family in QWEN)
        if ends is None:
            return False
        self.span(*ends, self.sentence(*m.span()))
        return True

    def _frames(self, m: re.Match[str]) -> bool:
        text = self.sentence(*m.span())
        numbers = [int(m.group("n"))]
        numbers += [int(n) for n in re.findall(r"\d{1,5}", m.group("list") or "")]
        last = m.group("last")
        if last is not None:
            first = self.frame(numbers[-1])
            final = self.frame(int(re.findall(r"\d{1,5}", last)[0]))
            if first and final:
                self.span(first[0], final[1], text)
            numbers = numbers[:-1]
        for number in numbers:
            got = self.frame(number)
            if got is not None:
                self.span(*got, text)
        return True

    def _ordinal(self, m: re.Match[str]) -> bool:
        word = m.group("o").lower()
        if word in ("last", "final"):
            number = len(self.times)
        elif word in _ORDINALS:
            number = _ORDINALS.index(word) + 1
        else:
            number = int(word[:-2])
        got = self.frame(number)
        if got is not None:
            self.span(*got, self.sentence(*m.span()))
        return True

    def _main(self, m: re.Match[str]) -> bool:
        if m.group("t") is not None:
            return self._alone(m.group("t"), m.start("t"), m.end("t"))
        lead, conn = (m.group("lead") or "").lower(), m.group("conn").lower()
        if conn != "and" or lead.startswith("between"):
            ends = _range_ends(m.group("a"), m.group("b"), self.family, bare=False)
            if ends is not None:
                if lead or not self._duration(m.start(), m.end()):
                    self.span(*ends, self.sentence(*m.span()))
                return True
        a = self._alone(m.group("a"), m.start("a"), m.end("a"))
        b = self._alone(m.group("b"), m.start("b"), m.end("b"))
        return a or b

    def _alone(self, token: str, lo: int, hi: int) -> bool:
        """A time on its own: an instant, unless bare, a decade, a clock of day or a duration."""
        read = _decode(token, self.family)
        if read is None or read[1] == "bare" or self._not_a_moment(token, lo, hi, read[1]):
            return False
        self.instant(read[0], self.sentence(lo, hi))
        return True

    def _not_a_moment(self, token: str, lo: int, hi: int, kind: str) -> bool:
        before = self.text[max(0, lo - 12) : lo].lower()
        decade = kind == "unit" and _DECADE.fullmatch(token.strip())
        if decade and (len(token.strip()) == 5 or before.endswith(("the ", "'", "’", "mid-"))):
            return True
        if kind == "clock" and _CLOCK_OF_DAY.match(self.text, hi):
            return True
        return self._duration(lo, hi)

    def _duration(self, lo: int, hi: int) -> bool:
        return bool(
            _DURATION_BEFORE.search(self.text, max(0, lo - 60), lo)
            or _DURATION_AFTER.match(self.text, hi)
        )


def _first(fields: dict[str, str], keys: frozenset[str]) -> str | None:
    return next((v for k, v in fields.items() if k in keys), None)


def _decode(token: str, family: str) -> tuple[float, str, float] | None:
    """(seconds, kind, unit scale) of a time token; kind: clock, unit, mark or bare."""
    token = token.strip()
    if ":" in token:
        parts = _CLOCK_PARTS.fullmatch(token)
        if parts is None:
            return None
        hours, minutes, secs, frac = parts.groups()
        if int(secs) >= 60 or (hours is not None and int(minutes) >= 60):
            return None
        value = int(hours or 0) * 3600 + int(minutes) * 60 + int(secs)
        return value + (float("0." + frac) if frac else 0.0), "clock", 1.0
    if token.startswith("<"):
        kind = "mark" if family in QWEN3 else "bare"
        return float(token.strip("<> ")), kind, 1.0
    units = _UNIT_PART.findall(token)
    if not units:
        return float(token), "bare", 1.0
    total = sum(float(n) * _SCALE[u.lower()] for n, u in units)
    return total, "unit", _SCALE[units[-1][1].lower()]


def _range_ends(a: str, b: str, family: str, *, bare: bool) -> tuple[float, float] | None:
    """Both ends of a range in seconds, or None when it is not one: one end needs a unit, or
    both a clock; a bare end takes the other's unit (never a clock's); with `bare`, two bare
    numbers are seconds."""
    ra, rb = _decode(a, family), _decode(b, family)
    if ra is None or rb is None:
        return None
    kinds = {ra[1], rb[1]}
    if kinds == {"bare"}:
        return (ra[0], rb[0]) if bare else None
    if "bare" in kinds:
        if "clock" in kinds:
            return None
        scale = rb[2] if ra[1] == "bare" else ra[2]
        ra = (ra[0] * scale, *ra[1:]) if ra[1] == "bare" else ra
        rb = (rb[0] * scale, *rb[1:]) if rb[1] == "bare" else rb
    return ra[0], rb[0]


def _value(raw: str) -> float | None:
    """Seconds in a JSON value: a clock, a number with a unit, or a bare number."""
    raw = raw.strip().strip("<>").strip()
    if re.fullmatch(_NUM, raw):
        return float(raw)
    if re.fullmatch(_CLOCK, raw) or re.fullmatch(_WORDS, raw, re.I):
        read = _decode(raw, "")
        return None if read is None else read[0]
    return None


def _sentence(text: str, lo: int, hi: int) -> str:
    """The sentence (or line) around text[lo:hi], trimmed; at most `_WINDOW` chars each side."""
    start = max(0, lo - _WINDOW)
    for m in _SENTENCE_END.finditer(text, start, lo):
        start = m.end()
    stop = min(len(text), hi + _WINDOW)
    end = _SENTENCE_END.search(text, hi, stop)
    if end is not None:
        stop = end.start() if end.group() == "\n" else end.end()
    words = " ".join(text[start:stop].replace("\x00", " ").split())
    return words.lstrip("-*•> ").strip()


def _finish(hits: list[_Hit], bounds: tuple[float, float] | None) -> list[Span]:
    """Clamped to `bounds`, ordered, overlapping or touching spans merged; as Spans."""
    kept = []
    for hit in hits:
        if not (math.isfinite(hit.start) and math.isfinite(hit.end)) or hit.start < 0:
            continue
        if bounds is not None:
            low, high = bounds
            if hit.start > high or hit.end < low:
                continue
            start, end = max(hit.start, low), min(hit.end, high)
            if end <= start and not (hit.point and start == end):
                continue
            hit = _Hit(start, end, hit.text, hit.point)
        kept.append(hit)
    kept.sort(key=lambda h: (h.start, h.end))
    merged: list[tuple[float, float, list[str]]] = []
    for hit in kept:
        if merged and hit.start <= merged[-1][1]:
            start, end, texts = merged[-1]
            if hit.text and hit.text not in texts and sum(map(len, texts)) < 2000:
                texts.append(hit.text)
            merged[-1] = (start, max(end, hit.end), texts)
        else:
            merged.append((hit.start, hit.end, [hit.text] if hit.text else []))
    return [Span(start=round(a, 3), end=round(b, 3), text=" ".join(t)) for a, b, t in merged]


def merge_spans(spans: Sequence[Span]) -> list[Span]:
    """`spans` ordered, overlapping or touching ones merged (their texts joined)."""
    return _finish([_Hit(s.start, s.end, s.text, s.start == s.end) for s in spans], None)


def format_spans(spans: Sequence[Span], fmt: str) -> str:
    """The spans as `lines` (`0:12.0 - 0:15.5  text`; h:mm:ss.s when one reaches an hour),
    `json` (a list of {start, end, text}), `srt` or `vtt` (a cue each)."""
    if fmt == "lines":
        hours = any(s.end >= 3599.95 for s in spans)
        return "".join(
            f"{_clock(s.start, hours)} - {_clock(s.end, hours)}  {_one_line(s.text)}".rstrip()
            + "\n"
            for s in spans
        )
    if fmt == "json":
        body = [s.model_dump() for s in spans]
        return json.dumps(body, ensure_ascii=False, indent=2) + "\n"
    if fmt in ("srt", "vtt"):
        cues = []
        for number, s in enumerate(spans, 1):
            start, end = stamp(s.start), stamp(s.end)
            if fmt == "srt":
                start, end = start.replace(".", ","), end.replace(".", ",")
            text = _one_line(s.text).replace("-->", "->") or "..."
            cues.append(f"{number}\n{start} --> {end}\n{text}\n")
        return ("WEBVTT\n\n" if fmt == "vtt" else "") + "\n".join(cues)
    raise OptionsError(f"unknown span format {fmt!r}: use {', '.join(SPAN_FORMATS)}")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _clock(seconds: float, hours: bool) -> str:
    """`m:ss.s`, or `h:mm:ss.s` when `hours`; rounded to the nearest tenth (halves up)."""
    tenths = math.floor(max(seconds, 0.0) * 10 + 0.5)
    h, rest = divmod(tenths, 36_000)
    m, rest = divmod(rest, 600)
    s, d = divmod(rest, 10)
    if hours:
        return f"{h}:{m:02d}:{s:02d}.{d}"
    return f"{h * 60 + m}:{s:02d}.{d}"
