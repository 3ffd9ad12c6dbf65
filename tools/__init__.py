"""The MCP tools, one thin module each: validate, call the orchestrator, shape the result."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from memorch.tools import (
    add_memory,
    delete_all_memories,
    delete_memory,
    get_memory,
    list_memories,
    memory_history,
    restore_memory,
    search_memories,
    update_memory,
)
from memorch.tools._common import MemorchServer, ServerState

TOOL_MODULES = (
    add_memory,
    search_memories,
    update_memory,
    delete_memory,
    memory_history,
    restore_memory,
    get_memory,
    list_memories,
    delete_all_memories,
)


def register_all(server: MCPServer, state: ServerState) -> None:
    for module in TOOL_MODULES:
        module.register(server, state)


__all__ = ["MemorchServer", "ServerState", "register_all"]
