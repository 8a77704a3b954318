"""Drives agentd's Responses API with the official `openai` SDK.

Usage: python3 openai_responses.py BASE_URL API_KEY

Each check asserts what the SDK returns; the last line printed is a JSON
object of the response ids the calls created, for the Rust test to look up.
"""

import json
import sys
import time

import openai

base, key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
ids = {}

# Plain: the run's output as one assistant message; the id is the run id.
raw = client.responses.with_raw_response.create(model="demo", input="hello", user="user-7")
plain = raw.parse()
assert raw.headers["x-agentd-run-id"] == plain.id, (raw.headers, plain.id)
assert plain.object == "response" and plain.status == "completed", plain
assert plain.model == "demo", plain
assert plain.output_text == "done: hello", plain.output_text
message = plain.output[0]
assert message.type == "message" and message.role == "assistant", message
assert message.content[0].type == "output_text", message
assert plain.usage.input_tokens > 0 and plain.usage.output_tokens > 0, plain.usage
assert plain.usage.total_tokens == plain.usage.input_tokens + plain.usage.output_tokens
assert plain.previous_response_id is None, plain
assert plain.model_extra["agentd"]["run_id"] == plain.id, plain.model_extra
ids["plain"] = plain.id

# Streamed: the Responses events, numbered, ending with the whole response.
events = list(client.responses.create(model="demo", input="streamed", stream=True))
kinds = [e.type for e in events]
assert kinds[:2] == ["response.created", "response.in_progress"], kinds
for kind in (
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
):
    assert kind in kinds, (kind, kinds)
assert kinds[-1] == "response.completed", kinds
assert [e.sequence_number for e in events] == list(range(len(events))), events
deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
assert deltas == "done: streamed", deltas
done = [e for e in events if e.type == "response.output_text.done"][0]
assert done.text == "done: streamed", done
completed = events[-1].response
assert completed.status == "completed" and completed.output_text == "done: streamed", completed
assert completed.usage.total_tokens > 0, completed.usage
assert events[0].response.id == completed.id
ids["stream"] = completed.id

# The SDK's stream helper accumulates the same events into a response.
with client.responses.stream(model="demo", input="helper") as s:
    final = s.get_final_response()
assert final.output_text == "done: helper", final.output_text

# Chained: the second response's model reads the first exchange, and the
# third reads both (the conversation is the runs' memory).
first = client.responses.create(
    model="chat", input="my name is Ada", instructions="be brief"
)
assert first.output_text == "[system: be brief] my name is Ada", first.output_text
assert first.instructions == "be brief", first.instructions
second = client.responses.create(
    model="chat", input="who am I?", previous_response_id=first.id
)
assert second.previous_response_id == first.id, second
assert second.instructions is None, second.instructions
assert second.output_text == (
    "[user: my name is Ada | assistant: [system: be brief] my name is Ada] who am I?"
), second.output_text
third = client.responses.create(
    model="chat",
    input=[{"role": "user", "content": [{"type": "input_text", "text": "and now?"}]}],
    previous_response_id=second.id,
)
assert third.output_text.startswith("[user: my name is Ada | assistant: ") and (
    "user: who am I? | assistant: " in third.output_text
), third.output_text
conversation = first.model_extra["agentd"]["conversation_id"]
assert conversation and third.model_extra["agentd"]["conversation_id"] == conversation
ids.update(first=first.id, second=second.id, third=third.id)

# Background: queued at once, then polled until completed.
queued = client.responses.create(model="slow", input="later", background=True)
assert queued.status in ("queued", "in_progress"), queued.status
assert queued.background is True and queued.output == [], queued
deadline = time.time() + 20
got = client.responses.retrieve(queued.id)
while got.status in ("queued", "in_progress"):
    assert time.time() < deadline, got
    time.sleep(0.05)
    got = client.responses.retrieve(queued.id)
assert got.status == "completed" and got.output_text == "done: later", got
assert got.background is True, got
ids["background"] = got.id

# A pausing agent: incomplete, with its question and where to resume.
paused = client.responses.create(model="asker", input="go")
assert paused.status == "incomplete" and paused.output_text == "ok?", paused
ext = paused.model_extra["agentd"]
assert ext["status"] == "paused" and ext["resume"] == f"/v1/runs/{paused.id}/resume", ext
ids["paused"] = paused.id

# A run that dies: a failed response with the run's error.
broken = client.responses.create(model="broken", input="x")
assert broken.status == "failed" and "is dead" in broken.error.message, broken
assert client.responses.retrieve(broken.id).status == "failed"
ids["broken"] = broken.id
events = list(client.responses.create(model="broken", input="x", stream=True))
assert events[-1].type == "response.failed", [e.type for e in events]

# Unknown ids and models.
for call, code in (
    (lambda: client.responses.retrieve("0190b6a0-0000-7000-8000-000000000000"), "response_not_found"),
    (lambda: client.responses.retrieve("resp_nope"), "response_not_found"),
    (lambda: client.responses.create(model="nope", input="x"), "model_not_found"),
    (
        lambda: client.responses.create(
            model="chat", input="x", previous_response_id="0190b6a0-0000-7000-8000-000000000000"
        ),
        "previous_response_not_found",
    ),
):
    try:
        call()
        raise AssertionError(f"expected {code}")
    except openai.NotFoundError as e:
        assert e.status_code == 404 and e.code == code, (code, e.body)

# A malformed input, and a bad key.
try:
    client.responses.create(model="demo", input=[{"role": "assistant", "content": "x"}])
    raise AssertionError("an input ending with an assistant message was accepted")
except openai.BadRequestError as e:
    assert e.param == "input", e.body
bad = openai.OpenAI(base_url=base + "/v1", api_key="agd_bogus_key", max_retries=0)
try:
    bad.responses.create(model="demo", input="x")
    raise AssertionError("a bad key was accepted")
except openai.AuthenticationError as e:
    assert e.code == "invalid_api_key", e.body

print(json.dumps(ids))
