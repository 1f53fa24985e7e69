"""The LLM endpoint layer: structured questions to any OpenAI-compatible endpoint, or to the bundled model.

    from extraction.llm import Endpoint, Request, open_client

    with open_client() as llm:                        # bundled Gemma 3 270M, local server started and stopped
        answer = llm.ask(Request(messages, MyModel, cache_key))
    with open_client(Endpoint(model="gpt-4o-mini")) as llm:   # OpenAI, key from $OPENAI_API_KEY
        answers = llm.ask_many(requests)

See docs/llm-endpoints.md.
"""

from extraction.llm.answers import Answer, Request, Usage
from extraction.llm.bundled import MODEL_ID as BUNDLED_MODEL_ID
from extraction.llm.bundled import bundled_model_path
from extraction.llm.client import LLMClient, completion_confidence, open_client
from extraction.llm.endpoint import Endpoint
from extraction.llm.errors import LLMError

__all__ = [
    "Answer",
    "BUNDLED_MODEL_ID",
    "Endpoint",
    "LLMClient",
    "LLMError",
    "Request",
    "Usage",
    "bundled_model_path",
    "completion_confidence",
    "open_client",
]
