"""Errors that describe a user's mistake (bad input, bad options), and warnings about results to check.

The CLI turns a :class:`DevolensError` into a one-line message and exit code 2, never a
traceback. Library code raises it whenever the cause is the input rather than a bug.
Where the CLI prints a note about a result to check, library code issues a warning
(``warnings.warn``), each a :class:`DevolensWarning`: :class:`DiameterWarning` (a magnification estimate), :class:`IdentityWarning` (a table the
identity model reads poorly), :class:`NoSignalWarning` (a population frame without signal, counted NaN),
:class:`InputWarning` (segmentation or population input that looks inverted, or like the other model's kind), which
the CLI silences as it prints its own notes, :class:`ReadNote` (how a well's channels were chosen, printed as a note);
the other notes of the library (a livedead well's, a tile store's...)
are plain :class:`DevolensWarning`.

A message that names one of the user's options names it as the user gave it: the command's flag (``--channel 5``)
while the ``devolens`` command runs, the function's argument (``channel=5``) otherwise (:func:`option`).
"""

from __future__ import annotations

from pathlib import Path


class DevolensError(Exception):
    """A problem with the user's input; the message is shown as is (one line)."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.message = message  # without the path
        self.path = None if path is None else Path(path)
        text = f"{shown_path(self.path)}: {message}" if self.path is not None else message
        super().__init__(text)


def listed(items, n: int = 4) -> str:
    """The first ``n`` of ``items`` (text) for a message, with how many more there are: ``"a, b, c and 2 more"``."""
    items = list(items)
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def shown_path(path: str | Path) -> str:
    """``path`` as a one-line message shows it: a control character in a file name (a newline, a tab, a carriage
    return: legal on Linux and macOS) written as its escape (``new\\nline.png``), which would otherwise break the
    message's one line in two, or move the cursor."""
    text = str(path)
    if not any(ord(c) < 32 or ord(c) == 127 for c in text):
        return text
    return "".join(repr(c)[1:-1] if ord(c) < 32 or ord(c) == 127 else c for c in text)


class DevolensValueError(DevolensError, ValueError):
    """A value a function cannot work with, where that function raised a plain ValueError before (callers that
    catch ValueError still catch it)."""


class DevolensWarning(UserWarning):
    """The base of every warning devolens issues: a host program (a napari plugin, a pipeline) catches or routes all
    of devolens's notes by it, apart from other libraries' warnings, e.g.
    ``with warnings.catch_warnings(record=True) as notes: warnings.simplefilter("always", DevolensWarning)``, or
    ``warnings.filterwarnings("ignore", category=DevolensWarning)``. Notes without a class of their own (a
    livedead well's swapped channels, an 8-bit export, a tile store's conversion) are issued as this class."""


class DiameterWarning(DevolensWarning):
    """``diameter="auto"`` (or ``"each"``) could not judge the magnification of the images (too few objects, or
    too narrow images) and used them as they are; the estimate is in the predictor's ``last_estimate``
    (``estimates`` with ``"each"``), and in each segmentation result's ``extra["estimate"]``; also where ``"auto"``
    (or ``"each"``) used the nuclei's measured spot size instead of the size model's reading (culture nuclei smaller
    than the embryos it was trained on: the estimate's ``spots``). Also, once per note and
    call of the nuclei and membrane models' ``predict``, ``predict_batch`` or ``predict_iter``, the size notes of
    ``devolens segment``: objects found far from the sizes the model knows, images segmented as they are at a
    magnification far from the training one, a ``diameter`` given far from the size model's reading, nuclei smaller
    than ``"auto"`` assumed (:class:`~devolens.predict.notes.SizeWatch`); ignoring this class
    (``warnings.filterwarnings("ignore", category=DiameterWarning)``) also saves their checks' cost.

    Python shows a warning once per line by default (a service calling ``predict`` in a loop sees only the first
    call's): ``warnings.simplefilter("always", devolens.errors.DiameterWarning)`` to see every call's."""


class NoSignalWarning(DevolensWarning):
    """A frame given to :meth:`~devolens.predict.population.PopulationPredictor.predict` (or ``predict_batch``)
    holds no signal (:func:`~devolens.predict.population.lacks_signal`: one grey level throughout, or black with
    nothing in it): there is nothing to count, so its counts are NaN, as ``devolens population`` leaves its row
    empty; the frames' positions are in the predictor's ``flat_frames``."""


class InputWarning(DevolensWarning):
    """The images given to a segmentation predictor's ``predict``, ``predict_batch`` or ``predict_iter``
    (:class:`~devolens.predict.segment.NucleiPredictor`, :class:`~devolens.predict.segment.MembranePredictor`) look
    inverted (dark nuclei or membranes on a bright background: an inverted export, a transmitted-light image) or like
    the other model's kind (bright blobs given to the membrane model, which outlines "cells" around them; thin bright
    lines given to the nuclei model): the results are not what the model counts. The population predictor's
    (:class:`~devolens.predict.population.PopulationPredictor`, method ``composition``) warn alike where its frames
    look inverted or like membranes, in words for its counts (they come from its nuclei model's). One warning per
    call, judged on a few of the first images (:func:`~devolens.predict.notes.judge_input`, which ``devolens
    segment``'s and ``population``'s notes come from); not where ``diameter`` was given in pixels, nor for the
    segmentation predictors where it is ``"each"``. Also for an image file given by its path that was read turned or
    mirrored as its EXIF orientation tag says (a phone's or camera's JPEG), as ``devolens segment`` notes it: the
    labels follow the turned image, while napari and imageio show the file unturned.

    Python shows a warning once per line by default (a service calling ``predict`` in a loop sees only the first
    call's): ``warnings.simplefilter("always", devolens.errors.InputWarning)`` to see every call's."""


class ReadNote(DevolensWarning):
    """How a well was read, where its file chose it: its channels taken by their names (``Draq7``, ``Hoechst``: not
    Hoechst first) or by an RGB TIFF's colours (:func:`devolens.io.wells.well_channel_order`). Information rather
    than a problem: ``devolens segment livedead`` and ``tile make`` print it as a ``note:``, where the other
    :class:`DevolensWarning` of a well are its ``warning:`` lines."""


class IdentityWarning(DevolensWarning):
    """:meth:`~devolens.predict.identity.IdentityPredictor.predict` found something in its input that makes names
    to check (a table that stops early, a nearly symmetric or lopsided nucleus cloud, a cut-off embryo, tracks that
    break, rows left out...): one warning per note, in the words ``devolens identify`` prints as its notes
    (:func:`~devolens.predict.identity.input_notes`, which the command's notes come from)."""


class WeightsWarning(DevolensWarning):
    """A model was loaded (:func:`devolens.models.zoo.load`, :meth:`devolens.predict.livedead.LiveDeadPredictor.load`,
    the commands' ``--model``) whose weights file is not the one its card records (``weights_sha256``): replaced or
    damaged after the card was written, so the card's figures do not describe them; a shipped model's, a damaged
    install (reinstall devolens). The commands print it as a ``warning:`` line; ``devolens models show`` says the same
    (:func:`devolens.models.zoo.weights_mismatch`)."""


class StartWarning(DevolensWarning):
    """A training run was loaded (:func:`devolens.models.load`, the commands' ``--model``) that fine-tuned starting
    weights (``init: zoo:nuclei``) and none of whose epochs beat them on its validation set (its run.json's
    ``start``: ``not_beaten``): its best checkpoint scores lower than the model it started from. In the words
    ``devolens train`` and ``devolens models export`` say it (the card's ``trained["note"]``); the commands print
    it as a ``note:`` line. Also a run that did not train all the epochs its recipe sets (interrupted, or still
    training: the card's ``trained["unfinished"]``)."""


def ordinal(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ``11th``, ``21st``, ``111th``: for messages and reports in words. Here
    because every module imports this one already (training's summary and the demo's report both use it, and the
    CLI must not import training, with PyTorch, to start)."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


#: whether the ``devolens`` command is running (:func:`set_command`): messages then name its flags (:func:`option`)
_command = False


def set_command(running: bool) -> None:
    """Say that the ``devolens`` command has started (True) or ended (False): while it runs, :func:`option` names
    the command's flags. Only the command's entry point calls it (:mod:`devolens.cli`); a program using the library
    never does."""
    global _command
    _command = bool(running)


def command_running() -> bool:
    """Whether the ``devolens`` command is running (:func:`set_command`), for a message worded otherwise than with
    :func:`option` (a whole call rather than an argument)."""
    return _command


def option(arg: str, value: str | None = None, *, flag: str | None = None, cli_value: str | None = None) -> str:
    """How a message names one of the user's options: the ``devolens`` command's flag while the command runs
    (:func:`command_running`), the library function's argument otherwise (a Python user has no flags).

    Parameters
    ----------
    arg : str
        The argument as the library spells it (``"channel"``, ``"stack_z"``).
    value : str, optional
        Its value as Python spells it (``"5"``, ``"'slices'"``, ``"[2, 0]"``, a placeholder ``"N"``); None: the
        name alone (``channel must be ...``).
    flag : str, optional
        The option as the command's messages name it: default ``--`` and ``arg`` with ``-`` for ``_``
        (``--stack-z``).
    cli_value : str, optional
        The value as the command line spells it (``"slices"``, ``"2,0"``); default ``value``; ``""``: the flag
        alone (``choose it with --channel`` / ``choose it with channel=N``).

    Returns
    -------
    str
        ``--channel 5`` / ``channel=5`` (with a value); ``--channel`` / ``channel`` (without).

    Examples
    --------
    >>> option("channel", "5")
    'channel=5'
    >>> option("order", "[2, 0]", flag="--channels", cli_value="2,0")
    'order=[2, 0]'
    """
    if not _command:
        return arg if value is None else f"{arg}={value}"
    flag = flag if flag is not None else "--" + arg.replace("_", "-")
    shown = value if cli_value is None else cli_value
    return f"{flag} {shown}" if shown else flag
