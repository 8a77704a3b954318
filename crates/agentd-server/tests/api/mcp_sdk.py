"""Drives agentd's agents-as-MCP-tools with the official `mcp` Python SDK.

Usage:
    python3 mcp_sdk.py http URL API_KEY     # streamable HTTP at URL (/mcp)
    python3 mcp_sdk.py stdio AGENTD CONFIG  # `AGENTD --config CONFIG mcp --agent ...`
    python3 mcp_sdk.py progress URL TENANT TOOL INPUT
        # one call with a progress callback (auth.mode = "none"); prints
        # {"run_id", "status", "progress": [[value, message], ...]}

Each check asserts what the SDK returns; the last line printed is a JSON
object of the run ids the calls created, for the Rust test to look up.
"""

import asyncio
import json
import sys
import traceback

from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

mode = sys.argv[1]


def transport(key):
    if mode == "http":
        headers = {"Authorization": f"Bearer {key}"}
        return streamable_http_client(
            sys.argv[2], http_client=create_mcp_http_client(headers=headers)
        )
    agentd, config = sys.argv[2], sys.argv[3]
    return StdioServerParameters(
        command=agentd,
        args=["--config", config, "mcp", "--agent", "demo", "--agent", "asker",
              "--agent", "broken", "--agent", "writer", "--tenant", "acme",
              "--principal", "desk"],
    )


async def main():
    ids = {}
    async with Client(transport(sys.argv[3] if mode == "http" else None)) as client:
        # Tools: one per agent, `run_<agent>`, with its description and schemas.
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert {"run_demo", "run_asker", "run_broken", "run_writer"} <= set(tools), tools
        if mode == "stdio":
            assert set(tools) == {"run_demo", "run_asker", "run_broken", "run_writer"}, tools
        writer = tools["run_writer"]
        assert writer.description == "Writes a short poem about its input.", writer
        assert writer.title == "writer", writer
        assert writer.input_schema["required"] == ["input"], writer.input_schema
        assert writer.output_schema["required"] == ["run_id", "status"], writer.output_schema
        assert "demo" in tools["run_demo"].description, tools["run_demo"]

        # A call is a run: its output as text, the run in structured content.
        done = await client.call_tool("run_demo", {"input": "hello"})
        assert not done.is_error, done
        assert done.content[0].text == "done: hello", done
        assert done.structured_content["status"] == "succeeded", done
        assert done.structured_content["output"] == "done: hello", done
        ids["plain"] = done.structured_content["run_id"]

        # Progress: one notification per journaled step, in order.
        seen = []

        async def progress(value, total, message):
            seen.append((value, message))

        stepped = await client.call_tool(
            "run_writer", {"input": "rain"}, progress_callback=progress
        )
        assert stepped.structured_content["status"] == "succeeded", stepped
        values = [v for v, _ in seen]
        assert values == [1.0, 2.0, 3.0], seen
        assert seen[1][1] == "step 1: tool echo", seen
        ids["progress"] = stepped.structured_content["run_id"]

        # A conversation continues across calls.
        first = await client.call_tool("run_demo", {"input": "one", "conversation_id": "c-mcp"})
        again = await client.call_tool("run_demo", {"input": "two", "conversation_id": "c-mcp"})
        assert again.structured_content["status"] == "succeeded", again
        ids["conversation"] = [first.structured_content["run_id"],
                               again.structured_content["run_id"]]

        # A run that pauses answers with its question, not an error.
        paused = await client.call_tool("run_asker", {"input": "x"})
        assert not paused.is_error, paused
        assert paused.structured_content["status"] == "paused", paused
        assert paused.structured_content["question"] == "ok?", paused
        assert paused.content[0].text.startswith("ok?"), paused
        ids["paused"] = paused.structured_content["run_id"]

        # A run that fails is a tool error the model can read.
        broken = await client.call_tool("run_broken", {"input": "x"})
        assert broken.is_error, broken
        assert broken.structured_content["status"] == "dead", broken
        assert broken.structured_content["error"]["code"], broken
        ids["broken"] = broken.structured_content["run_id"]

        # Protocol errors: an unknown tool, bad arguments.
        for name, args, needle in [
            ("run_nobody", {"input": "x"}, "unknown tool"),
            ("run_demo", {}, "`input` is required"),
            ("run_demo", {"input": 3}, "`input` must be a string"),
            ("run_demo", {"input": "x", "extra": 1}, "unknown argument"),
        ]:
            try:
                res = await client.call_tool(name, args)
            except MCPError as e:
                assert needle in str(e), (name, args, e)
            else:
                # The SDK may validate arguments against the input schema
                # itself and report a tool error instead.
                assert res.is_error, (name, args, res)

    if mode == "http":
        # A bad key never reaches the tools.
        try:
            async with Client(transport("not-a-key")) as client:
                await client.list_tools()
        except BaseException as e:  # the SDK reports the HTTP 401 as an error response
            told = "".join(traceback.format_exception(e))
            assert "Server returned an error response" in told, told
        else:
            raise AssertionError("a bad key was accepted")

    print(json.dumps(ids))


async def progress_only():
    url, tenant, tool, text = sys.argv[2:6]
    http = create_mcp_http_client(headers={"X-Tenant-Id": tenant})
    seen = []

    async def progress(value, total, message):
        seen.append([value, message])

    async with Client(streamable_http_client(url, http_client=http)) as client:
        res = await client.call_tool(tool, {"input": text}, progress_callback=progress)
    print(json.dumps({
        "run_id": res.structured_content["run_id"],
        "status": res.structured_content["status"],
        "progress": seen,
    }))


asyncio.run(progress_only() if mode == "progress" else main())
