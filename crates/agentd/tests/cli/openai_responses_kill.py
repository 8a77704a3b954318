"""The Responses API across a SIGKILL, with the official `openai` SDK.

Usage:
  python3 openai_responses_kill.py create BASE_URL
      creates a background response, waits until its run is in progress
      and prints its id (the Rust test then kills the server with SIGKILL);
  python3 openai_responses_kill.py retrieve BASE_URL ID
      (on a restarted server) retrieves the response until it completed,
      then chains a response to it and prints the chained response's text.
"""

import sys
import time

import openai

mode, base = sys.argv[1], sys.argv[2]
# No auth on the test server: any key does.
client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)

if mode == "create":
    queued = client.responses.create(model="slow", input="survive", background=True)
    assert queued.status in ("queued", "in_progress"), queued.status
    deadline = time.time() + 20
    got = queued
    while got.status == "queued":
        assert time.time() < deadline, got
        time.sleep(0.02)
        got = client.responses.retrieve(queued.id)
    assert got.status == "in_progress", got.status
    print(queued.id)
elif mode == "retrieve":
    rid = sys.argv[3]
    deadline = time.time() + 60
    got = client.responses.retrieve(rid)
    while got.status in ("queued", "in_progress"):
        assert time.time() < deadline, got
        time.sleep(0.05)
        got = client.responses.retrieve(rid)
    assert got.status == "completed", got
    assert got.output_text == "[] done: survive-2", got.output_text
    assert got.background is True, got
    # The conversation survived too: a chained response reads it.
    chained = client.responses.create(model="slow", input="next", previous_response_id=rid)
    assert chained.previous_response_id == rid, chained
    print(chained.output_text)
else:
    raise SystemExit(f"unknown mode {mode!r}: expected create or retrieve")
