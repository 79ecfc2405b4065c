"""Errors that carry the message a user should see."""


class HarnessError(Exception):
    """A failure with a user-facing message and an optional hint/log path."""

    def __init__(self, message: str, *, hint: str | None = None, log: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.log = log

    def __str__(self) -> str:
        parts = [self.message]
        if self.hint:
            parts.append(f"hint: {self.hint}")
        if self.log:
            parts.append(f"log: {self.log}")
        return "\n".join(parts)


class ChangeFailed(HarnessError):
    """The change under test failed: a patch does not apply, the kernel, the
    selftests or the guest tools do not compile. The run's verdict is FAIL
    (exit 1), as for a failing test; every other HarnessError is an
    infrastructure or usage problem: ERROR (exit 2)."""


class MissingTool(HarnessError):
    """A host tool is missing; the message names the Debian package."""

    def __init__(self, tool: str, package: str):
        super().__init__(
            f"'{tool}' not found",
            hint=f"install it with: apt-get install -y {package}"
            " (or run: python3 -m harness doctor --install)",
        )
        self.tool = tool
        self.package = package
