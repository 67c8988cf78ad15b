"""The question as the model is asked it: each benchmark's own prompt (docs/eval.md).

`prompt_for(question, style)` writes a `Question` as the text sent with the video: for a
multiple-choice question the instruction, question and lettered options the benchmark's own
evaluation uses, so that its answer rule (`vidtt.eval.choices`) reads the reply as the
benchmark's code would; a plain question for open answers; for grounding, a request for the
start and end seconds in a form `vidtt.pipeline.spans.read_spans` reads.
"""

from __future__ import annotations

from vidtt.eval.questions import LETTERS, Question
from vidtt.pipeline.when import WHEN

_VIDEOMME_HEAD = (
    "Select the best answer to the following multiple-choice question based on the video. "
    "Respond with only the letter ({letters}) of the correct option.\n"
)
_MVBENCH_HEAD = (
    "Carefully watch the video and pay attention to the cause and sequence of events, the "
    "detail and movement of objects, and the action and pose of persons. Based on your "
    "observations, select the best option that accurately addresses the question.\n"
)
_LETTER_TAIL = "Answer with the option's letter from the given choices directly."
# style -> (text before the question, a line before the options, how an option is written,
# the text after the options)
CHOICE_STYLES: dict[str, tuple[str, str, str, str]] = {
    "videomme": (_VIDEOMME_HEAD, "", "{letter}. {option}", "The best answer is:"),
    "mvbench": (
        _MVBENCH_HEAD + "Question: ",
        "Options:",
        "({letter}) {option}",
        "Only give the best option.",
    ),
    "longvideobench": ("", "", "{letter}. {option}", _LETTER_TAIL),
    "mlvu": (
        "Question: ",
        "Options:",
        "({letter}) {option}",
        "Only give the best option.\nBest option: (",
    ),
    "strict": ("", "", "{letter}. {option}", _LETTER_TAIL),
}
OPEN_PROMPT = "{question}\nAnswer the question briefly."
# the pipeline adds WHEN itself to a request with spans (the server does), others get it here
GROUNDING_PROMPT = "Find the moment in the video that matches this description: {question}\n" + WHEN
# benchmark name -> prompt style (also the choice rule of `vidtt.eval.choices`)
STYLES = {
    "videomme": "videomme",
    "mvbench": "mvbench",
    "longvideobench": "longvideobench",
    "mlvu": "mlvu",
    "charades_sta": "strict",
    "timelens": "strict",
}


def _spelled(letters: str) -> str:
    """The letters as Video-MME spells them: A, B, C, or D."""
    if len(letters) <= 2:
        return " or ".join(letters)
    return ", ".join(letters[:-1]) + ", or " + letters[-1]


def choice_prompt(question: Question, style: str = "strict") -> str:
    """A multiple-choice question with its options lettered as benchmark `style` asks it."""
    head, header, line, tail = CHOICE_STYLES.get(style, CHOICE_STYLES["strict"])
    options = question.options or []
    letters = LETTERS[: len(options)]
    listed = [line.format(letter=x, option=o) for x, o in zip(letters, options, strict=True)]
    body = "\n".join([question.question.strip(), *([header] if header else []), *listed, tail])
    return head.format(letters=_spelled(letters)) + body


def prompt_for(question: Question, style: str = "strict") -> str:
    """The text the model is asked with the video, for any kind of question."""
    if question.kind == "choice":
        return choice_prompt(question, style)
    if question.kind == "grounding":
        return GROUNDING_PROMPT.format(question=question.question.strip())
    return OPEN_PROMPT.format(question=question.question.strip())
