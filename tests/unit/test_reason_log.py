"""ReasonLog: a change of reason is reported at once; a log that starts in a named state (the controller's
"starting") reports its first call without a reason as a change, so that the controller's first tick that runs
the policy says so even when joint states and goals were there before it."""

from mtpolicy.nodes.reporting import ReasonLog


class Recorder:
    """The part of a node ReasonLog uses: a logger whose warnings are kept."""

    def __init__(self):
        self.warnings: list[str] = []

    def get_logger(self) -> "Recorder":
        return self

    def warning(self, text: str) -> None:
        self.warnings.append(text)


def test_a_log_that_starts_in_a_state_reports_the_first_call_without_a_reason_as_a_change():
    node = Recorder()
    log = ReasonLog(node, initial="starting")  # type: ignore[arg-type]
    assert log(None) is True  # the policy runs from the first tick
    assert log(None) is False
    assert log("no goals", "publishing zeros: {}") is True
    assert log(None) is True
    assert node.warnings == ["publishing zeros: no goals"]


def test_a_log_without_an_initial_state_reports_only_reasons_and_their_end():
    node = Recorder()
    log = ReasonLog(node)  # type: ignore[arg-type]
    assert log(None) is False
    assert log("no joint states") is True and log("no joint states") is False
    assert log(None) is True
    assert node.warnings == ["no joint states"]
