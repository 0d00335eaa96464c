"""Writes token-count vectors from OpenAI's reference tiktoken.

Usage: tiktoken_vectors.py DIR   (reads DIR/corpus/*.txt, writes DIR/vectors.json)

For every corpus file and encoding: the token ids of the text as plain text
(special-token markers such as <|endoftext|> are ordinary text), the file's
bytes decoded as UTF-8 with invalid bytes replaced by U+FFFD. For chat cases:
the prompt token count by OpenAI's reference counting function
(num_tokens_from_messages in the OpenAI cookbook: 3 tokens per message, 1 per
name, 3 to prime the reply).
"""
import json
import os
import sys

import tiktoken

ENCODINGS = ["o200k_base", "cl100k_base"]

CHATS = [
    {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello world"}]},
    {"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
        {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
        {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
        {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."},
    ]},
    {"model": "gpt-4", "messages": [
        {"role": "system", "content": "Réponds en français. 日本語も可。"},
        {"role": "user", "content": "Count: 1, 12, 123, 1234 🙂👩‍💻"},
        {"role": "assistant", "content": "Here you go:\n\n```go\nfmt.Println(42)\n```"},
        {"role": "user", "name": "bob", "content": "<|endoftext|> is just text"},
    ]},
    {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": ""}]},
]


def num_tokens_from_messages(messages, enc):
    tokens_per_message, tokens_per_name = 3, 1
    n = 0
    for message in messages:
        n += tokens_per_message
        for key, value in message.items():
            n += len(enc.encode_ordinary(value))
            if key == "name":
                n += tokens_per_name
    return n + 3


def main(root):
    corpus = os.path.join(root, "corpus")
    out = {"tiktoken_version": tiktoken.__version__, "texts": {}, "chats": []}
    for name in sorted(os.listdir(corpus)):
        with open(os.path.join(corpus, name), "rb") as f:
            text = f.read().decode("utf-8", errors="replace")
        out["texts"][name] = {}
        for e in ENCODINGS:
            ids = tiktoken.get_encoding(e).encode_ordinary(text)
            out["texts"][name][e] = {"count": len(ids), "ids": ids}
    for chat in CHATS:
        enc = tiktoken.encoding_for_model(chat["model"])
        out["chats"].append({**chat, "encoding": enc.name, "count": num_tokens_from_messages(chat["messages"], enc)})
    with open(os.path.join(root, "vectors.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"), ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
