"""Unmodified vendor SDKs pointed at credgate by base URL, with the app key as their API key:
the upstream sees the real key, never the app key."""

from __future__ import annotations

import anthropic
import openai


def test_openai_chat_completion_and_stream(world):
    grant = world.grant(world.secret("openai", "openai", {"token": "sk-real-openai"}, {"base_url": world.upstream.url}))
    client = openai.OpenAI(base_url=f"{world.gateway.url}/v1/grants/{grant}/v1", api_key=world.key, max_retries=0)
    completion = client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content == "Hello"
    seen = world.upstream.last()
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == "Bearer sk-real-openai"
    assert world.key not in str(seen.headers)

    stream = client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text == "Hello"
    assert world.upstream.last().headers["authorization"] == "Bearer sk-real-openai"


def test_anthropic_messages(world):
    grant = world.grant(world.secret("anthropic", "anthropic", {"token": "sk-ant-real"}, {"base_url": world.upstream.url}))
    client = anthropic.Anthropic(base_url=f"{world.gateway.url}/v1/grants/{grant}", api_key=world.key, max_retries=0)
    message = client.messages.create(model="claude-test", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "Hello"
    seen = world.upstream.last()
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == "sk-ant-real"
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert world.key not in str(seen.headers)
