"""What every tool module shares: the server's state, argument types a model can read, and the
one place where failures become tool errors.

Argument types: every parameter carries a description saying when to pass it. Optional values
are written as a plain JSON type with no ``default: null`` (``anyOf [T, null]`` trips some
function-calling adapters); omitting the argument is how a model says "not given".
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, cast

import pydantic
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from pydantic import ConfigDict, Field, WithJsonSchema

from memorch.domain._identity import caller_identity
from memorch.domain._validation import RESERVED_METADATA_KEY
from memorch.errors import LIBRARY_WORDS, InternalError, MemoryError, ValidationError
from memorch.tools._unknown import unknown_tool

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from mcp.server.mcpserver import Context
    from mcp.server.mcpserver.tools import Tool
    from mcp.types import CallToolResult
    from mcp.types import Tool as MCPTool

    from memorch.api._async_memory import AsyncMemory
    from memorch.config import MemoryConfig
    from memorch.results import Hit, HitList, MemoryList

log = logging.getLogger("memorch.tools")
UNSERVED_METHODS = ("prompts/list", "prompts/get", "resources/list", "resources/read", "resources/templates/list")


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def optional(json_type: dict[str, Any], description: str) -> Any:
    """``Annotated`` metadata for an optional argument shown to the model as ``json_type``."""
    return (WithJsonSchema(json_type), Field(description=description, json_schema_extra=_no_default))


def _optional(kind: type, json_type: dict[str, Any], description: str) -> Any:
    return Annotated[kind | None, *optional(json_type, description)]


_STRING = {"type": "string"}
_OBJECT = {"type": "object"}

MemoryId = Annotated[
    str,
    Field(
        description="Id from search_memories or list_memories",
        min_length=1,
    ),
]
UserId = _optional(
    str,
    _STRING,
    "Whose memories; omit for this server's user.",
)
AgentId = _optional(str, _STRING, "One agent's memories only.")
RunId = _optional(str, _STRING, "One run's (session's) memories only.")
IdUserId = _optional(
    str,
    _STRING,
    "Omit; if given, must match.",
)
IdAgentId = _optional(str, _STRING, "Omit; if given, must match.")
IdRunId = _optional(str, _STRING, "Omit; if given, must match.")
Project = _optional(
    str,
    _STRING,
    "Project layer to use with the global one; omit for the server's.",
)
IdProject = _optional(str, _STRING, "Omit; if given, must match or be global.")
OnlyProject = _optional(str, _STRING, "Only this project's layer; omit for every layer.")  # delete_all
Filters = _optional(
    dict,
    _OBJECT,
    'Metadata filter: {"k": "v"}, {"k": {"gte": 2}}, {"k": {"in": [...]}}, {"k": "*"}, OR/AND/NOT; dates too.',
)
AsOf = _optional(
    str,
    _STRING,
    "ISO date or datetime: the memories as they stood then.",
)
MaxTokens = _optional(
    int,
    {"type": "integer", "minimum": 1},
    "Token budget (~4 chars each); `omitted` counts what did not fit.",
)
# strict: "yes", "true" or 1 must not erase a memory for good by coercion.
Purge = Annotated[
    bool,
    Field(strict=True),
    *optional(
        {"type": "boolean"},
        "true when the user says to forget it: text and history erased for good, no restore.",
    ),
]
ExpiresAt = _optional(
    str,
    _STRING,
    'Time-bound facts ("until Friday", "this week"): when to forget it, ISO time or "7d".',
)
Metadata = _optional(dict, _OBJECT, 'JSON object kept with the memory, for filters, e.g. {"category": "health"}')
ReplacingMetadata = _optional(dict, _OBJECT, "Replaces the memory's whole metadata object. Omit to keep it.")


@dataclass
class ServerState:
    """One orchestrator per server process, created on the first tool call."""

    config: MemoryConfig
    _memory: AsyncMemory | None = field(default=None, init=False)

    def memory(self) -> AsyncMemory:
        if self._memory is None:
            from memorch.api._async_memory import AsyncMemory

            self._memory = AsyncMemory(self.config)
            # Inference a previous run left pending (a crash, a stop) resumes with the first request.
            self._memory.resume_background()
        return self._memory

    async def close(self) -> None:
        """Write what the store owes (index rows, graph work) and close it; called on the loop
        the tools ran on, when an HTTP server stops (SIGTERM, Ctrl+C)."""
        if self._memory is not None:
            memory, self._memory = self._memory, None
            await memory.close()

    def scope(
        self, user_id: str | None, agent_id: str | None = None, run_id: str | None = None, project: str | None = None
    ) -> dict[str, str | None]:
        """The scope of a scope-wide operation (add, search, list, delete all); ``user_id``
        defaults to MEMORCH_USER_ID. Id-level tools pass only what the caller gave. An empty string
        is no value, as for ``user_id``: some clients send "" for every optional text argument."""
        return {**given(user_id, agent_id, run_id, project), "user_id": user_id or self.config.user_id}


def given(user_id: str | None, agent_id: str | None, run_id: str | None, project: str | None) -> dict[str, str | None]:
    """An id-level tool's scope arguments as the caller gave them, an empty string as none (as
    ``ServerState.scope`` reads them: some clients send "" for every optional text argument)."""
    scope = {"user_id": user_id, "agent_id": agent_id, "run_id": run_id, "project": project}
    return {name: value or None for name, value in scope.items()}


def hits(found: MemoryList, *, full: bool, project: str | None) -> HitList:
    """``found`` as a model reads it: each memory without empty, internal or repeated fields
    (hash, absent scope parts, memorch's own metadata marks, an unchanged ``updated_at``, the
    layer when the server has no project), unless ``full`` (``explain`` / ``verbose``)."""
    if full:
        return cast("HitList", found)
    shown: list[Hit] = []
    for item in found["results"]:
        hit: dict[str, Any] = {k: v for k, v in item.items() if k in _HIT_KEYS and v is not None}
        metadata = {k: v for k, v in item["metadata"].items() if k != RESERVED_METADATA_KEY}
        if metadata:
            hit["metadata"] = metadata
        if item["updated_at"] != item["created_at"]:
            hit["updated_at"] = item["updated_at"]
        if project is not None or item.get("project") is not None:
            hit["layer"] = item["layer"]
        shown.append(cast("Hit", hit))
    return cast("HitList", {**found, "results": shown})


_HIT_KEYS = {
    "id",
    "memory",
    "score",
    "created_at",
    "expires_at",
    "user_id",
    "agent_id",
    "run_id",
    "project",
    "current",
    "explain",
}


def layers_note(config: MemoryConfig) -> str:
    """What a reading tool's description adds when the server works for a project."""
    if config.project is None:
        return ""
    return f"\n\nServer project {config.project!r}: its layer and the global one (`layer`)."


def delete_all_note(config: MemoryConfig) -> str:
    """What delete_all_memories adds on a project server: without ``project`` it reaches layers
    the reading tools never show (a newcomer's trial: a list of 2 memories, then 5 deleted)."""
    if config.project is None:
        return ""
    return f"\n\nServer project {config.project!r}: all layers, other projects' too, unless `project`."


def argument_error(tool: str, exc: pydantic.ValidationError, arguments: Sequence[str] = ()) -> ValidationError:
    """The arguments a model sent do not fit the tool's input schema: say which and how.
    ``arguments``: the tool's argument names, offered for one it does not take."""
    problems, fields, unknown = [], [], []
    for error in exc.errors(include_url=False, include_input=False):
        name = ".".join(str(part) for part in error["loc"]) or "arguments"
        if error["type"] == "extra_forbidden":  # an argument the tool does not take
            name = name[:60]
            close = difflib.get_close_matches(name, arguments, n=1)
            unknown.append((name, close[0] if close else None))
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"it takes no argument {name!r}{hint}")
            continue
        fields.append(name)
        problems.append(f"{name} is required" if error["type"] == "missing" else f"{name}: {error['msg']}")
    to_fix = [name for name in dict.fromkeys(fields) if name not in {close for _, close in unknown}]
    steps = [f"fix {', '.join(to_fix)} as its description in {tool}'s input schema says"] if to_fix else []
    steps += [f"pass {close} instead of {name}" if close else f"leave out {name}" for name, close in unknown]
    suggestion = ", ".join(steps)
    if unknown and arguments:
        suggestion += f" ({tool} takes only {', '.join(arguments)})"
    details: dict[str, Any] = {"fields": sorted({*fields, *(name for name, _ in unknown)})}
    if unknown:
        details |= {"unknown": [name for name, _ in unknown], "arguments": list(arguments)}
    return ValidationError(
        f"invalid arguments for {tool}: " + "; ".join(problems),
        error_code="INVALID_ARGUMENT",
        details=details,
        suggestion=f"{suggestion}, then call it again",
    )


def refuse_unknown_arguments(tool: Tool) -> None:
    """Make ``tool`` refuse arguments it does not take (the SDK's argument model ignores them):
    its input schema says ``additionalProperties: false`` and a call naming one fails validation,
    which ``MemorchServer`` reports as ``INVALID_ARGUMENT`` listing the arguments it takes."""
    loose = tool.fn_metadata.arg_model
    strict = type(
        loose.__name__, (loose,), {"model_config": ConfigDict(extra="forbid"), "__module__": loose.__module__}
    )
    tool.fn_metadata.arg_model = strict
    tool.parameters = _without_titles(strict.model_json_schema(by_alias=True))


def _without_titles(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema without pydantic's generated titles ("User Id"): the property names and the
    descriptions say it, and tools/list is part of every conversation's context."""
    schema = {k: v for k, v in schema.items() if k != "title"}
    if "properties" in schema:
        schema["properties"] = {name: _without_titles(prop) for name, prop in schema["properties"].items()}
    return schema


class MemorchServer(MCPServer):
    """The SDK's server, with every tool failure reported as ``[CODE] message. Suggestion: …``.

    The SDK wraps whatever a tool raises as ``Error executing tool NAME[: text]`` (a crash keeps
    no text at all); here the cause decides instead: a ``MemoryError`` speaks for itself, invalid
    arguments become ``INVALID_ARGUMENT`` naming the fields, and anything else is a bug, logged
    with its traceback and reported as ``INTERNAL_ERROR``.

    A caller bound to an identity (an HTTP token of ``MEMORCH_TOKENS_FILE``) gets that identity's
    scope on every call, before the tool runs (``domain._identity.Identity.bind``): its user_id always,
    and its agent/project limits on the tools that take those arguments.

    Every tool refuses an argument it does not take (``refuse_unknown_arguments``): a misspelt
    ``user_idd`` or an invented ``purge`` would otherwise be dropped and the call done without it.
    """

    state: ServerState | None = None  # set by serve.build_server
    # Called once, at the first tools/list (``memorch serve``: its stores' imports on a thread,
    # once the client's start-up requests are answered).
    on_first_list: Callable[[], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # No change notifications to listen for: the tool list is fixed for the server's life.
        super().__init__(*args, subscriptions=False, **kwargs)
        # memorch serves tools only; the SDK registers prompt and resource handlers on every
        # server, so clients would see capabilities that answer empty lists. Unserved, they are
        # not advertised and a call to them is "method not found" (tests/test_first_hour.py).
        for method in UNSERVED_METHODS:
            self._lowlevel_server._request_handlers.pop(method, None)

    async def list_tools(self) -> list[MCPTool]:
        # Output schemas would double tools/list (about 11 KB of every conversation's context)
        # and no model needs them: results still come as structuredContent beside the same JSON
        # as text, which is what clients read.
        listed = [tool.model_copy(update={"output_schema": None}) for tool in await super().list_tools()]
        if self.on_first_list is not None:
            first, self.on_first_list = self.on_first_list, None
            first()
        return listed

    def add_tool(self, fn: Callable[..., Any], name: str | None = None, *args: Any, **kwargs: Any) -> None:
        super().add_tool(fn, name, *args, **kwargs)
        tool = self._tool_manager.get_tool(name or fn.__name__)
        if tool is not None and tool.fn is fn:  # not an earlier tool of the same name the SDK kept
            refuse_unknown_arguments(tool)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | Any:
        tool = self._tool_manager.get_tool(name)
        if tool is None:
            return tool_error(name, unknown_tool(name, [known.name for known in self._tool_manager.list_tools()]))
        try:
            arguments = self._bind_to_caller(tool, arguments)
        except MemoryError as exc:  # PermissionDeniedError: refused before the tool runs
            return tool_error(name, exc)
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:  # UnexpectedToolError included: the cause tells what happened
            explained = self._explain(name, exc)
            if isinstance(explained, MemoryError):
                return tool_error(name, explained)
            raise  # the SDK's own refusal, as it words it

    def _arguments(self, name: str) -> list[str]:
        """The argument names of tool ``name``, as its input schema lists them."""
        tool = self._tool_manager.get_tool(name)
        return list(tool.parameters.get("properties", {})) if tool is not None else []

    def _bind_to_caller(self, tool: Tool, arguments: dict[str, Any]) -> dict[str, Any]:
        identity = caller_identity()
        if identity is None:  # unbound: stdio, in-process, the MEMORCH_AUTH_TOKEN admin token
            return arguments
        return identity.bind(tool.name, arguments, set(tool.parameters.get("properties", {})))

    def _explain(self, name: str, exc: ToolError) -> MemoryError | ToolError:
        cause = exc.__cause__
        if isinstance(cause, MemoryError):
            if not cause.next_step:  # the one form always names a next step (tests/test_fuzz.py found errors without)
                cause.next_step = _fallback_suggestion(name, cause)
            return cause
        if isinstance(cause, pydantic.ValidationError) and not isinstance(exc, UnexpectedToolError):
            return argument_error(name, cause, self._arguments(name))
        if isinstance(exc, UnexpectedToolError) or cause is not None:
            log.error("tool %s failed unexpectedly", name, exc_info=cause or exc)
            return InternalError.wrap(cause or exc)
        return exc  # the SDK's own refusal


# The operations a suggestion names, as a model calls them: by their tools' names.
TOOL_WORDS = {operation: operation for operation in LIBRARY_WORDS}


def tool_error(tool: str, exc: MemoryError) -> CallToolResult:
    """A failure as the tool's error result: the one text form a model reads (``[CODE] message.
    Suggestion: next step``) and the same fields typed in ``structuredContent.error``
    (``error_code``, ``message``, ``details``, ``suggestion``), so a client needs no parsing."""
    from mcp.types import CallToolResult, TextContent

    # %r: a caller's text (and an unknown tool's name) on one line
    log.info("tool %r failed: [%s] %r", tool[:80], exc.error_code, exc.message)
    return CallToolResult(
        content=[TextContent(type="text", text=exc.text(TOOL_WORDS))],
        structured_content={"error": exc.to_dict(TOOL_WORDS)},
        is_error=True,
    )


def _fallback_suggestion(tool: str, exc: MemoryError) -> str:
    """A next step for an error raised without one (a specific suggestion where it is raised is better)."""
    if isinstance(exc, ValidationError):
        return f"fix the argument the message names, as {tool}'s input schema describes, then call {tool} again"
    return f"retry {tool} once; if it fails again, tell the user what the message says"
