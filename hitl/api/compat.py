"""The cookbook example's stream vocabulary, derived from our events and task rows."""

from __future__ import annotations

import json
from typing import Any

from hitl.flow import content_hash
from hitl.service import EventType, ReviewRow, TaskRow, TaskStatus

# The events the cookbook has a word for; a stream parses no other event's data.
SPOKEN = frozenset(
    {
        EventType.CREATED,
        EventType.RUNNING,
        EventType.REVIEW_REQUESTED,
        EventType.REVIEW_DECIDED,
        EventType.COMPLETED,
        EventType.FAILED,
        EventType.CANCELLED,
        EventType.RETRIED,
    }
)


def message(type: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """The cookbook message for one event, or None for events it has no word for."""
    if type == EventType.CREATED:
        return {"status": "pending", "task_id": data["task_id"]}
    if type == EventType.RUNNING:
        return {"status": "running"}
    if type == EventType.REVIEW_REQUESTED:
        output = data.get("output")
        return {
            "status": "waiting_for_review",
            "output_to_review": output,
            "round": data["round"],
            "content_hash": data.get("content_hash") or content_hash(output),
        }
    if type == EventType.REVIEW_DECIDED:
        value = "rejected" if data.get("decision") == "reject" else "approved"
        return {"status": "processing_feedback", "feedback_value": value, "round": data["round"]}
    if type == EventType.COMPLETED:
        return {"status": "completed", "final_result": data.get("result")}
    if type == EventType.FAILED:
        return {"status": "failed", "error": data.get("error")}
    if type == EventType.CANCELLED:
        return {"status": "failed", "error": "task was cancelled"}
    if type == EventType.RETRIED:
        return {"status": "pending", "task_id": data["task_id"]}
    return None


def snapshot(task: TaskRow, review: ReviewRow | None) -> dict[str, Any]:
    """The cookbook message that says where a task stands now, for a late subscriber."""
    status = task.status
    if status == TaskStatus.QUEUED:
        return {"status": "pending", "task_id": task.id}
    if status == TaskStatus.WAITING_FOR_REVIEW and review is not None:
        output = json.loads(review.request).get("output")
        return {
            "status": "waiting_for_review",
            "output_to_review": output,
            "round": review.round,
            "content_hash": content_hash(output),
        }
    if status == TaskStatus.COMPLETED:
        result = json.loads(task.result) if task.result is not None else None
        return {"status": "completed", "final_result": result}
    if status == TaskStatus.FAILED:
        return {"status": "failed", "error": task.error}
    if status == TaskStatus.CANCELLED:
        return {"status": "failed", "error": "task was cancelled"}
    return {"status": "running"}
