"""An MCP server for the agentd-tools tests, written with the official
Python SDK (`pip install mcp`).

    python3 mcp_server.py stdio          # MCP over stdin/stdout
    python3 mcp_server.py http PORT      # streamable HTTP at http://127.0.0.1:PORT/mcp
"""

import os
import sys

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("agentd-test", log_level="WARNING")


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


@server.tool()
def shout(text: str) -> str:
    """Returns the text in upper case."""
    return text.upper()


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
def env(name: str) -> str:
    """The value of an environment variable of the server, or <unset>."""
    return os.environ.get(name, "<unset>")


@server.tool()
def fail(message: str) -> str:
    """Always fails with the message."""
    raise ToolError(message)


@server.tool()
def crash() -> str:
    """Exits the server process at once."""
    print("crash tool called, exiting", file=sys.stderr, flush=True)
    os._exit(3)


@server.tool()
def traceparent(ctx: Context) -> str:
    """The W3C traceparent in the call's _meta, or <none>."""
    meta = ctx.request_context.meta or {}
    return meta.get("traceparent", "<none>")


@server.tool()
async def slow(seconds: float) -> str:
    """Answers after the given number of seconds."""
    await anyio.sleep(seconds)
    return "done"


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
