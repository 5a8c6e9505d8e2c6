"""The cookbook example's stream vocabulary, derived from our events and task rows."""

from __future__ import annotations

import json
from typing import Any

from hitl.service import EventType, TaskStatus
from hitl.store import Row


def message(type: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """The cookbook message for one event, or None for events it has no word for."""
    if type == EventType.CREATED:
        return {"status": "pending", "task_id": data["task_id"]}
    if type == EventType.RUNNING:
        return {"status": "running"}
    if type == EventType.REVIEW_REQUESTED:
        return {"status": "waiting_for_review", "output_to_review": data.get("output")}
    if type == EventType.REVIEW_DECIDED:
        value = "rejected" if data.get("decision") == "reject" else "approved"
        return {"status": "processing_feedback", "feedback_value": value}
    if type == EventType.COMPLETED:
        return {"status": "completed", "final_result": data.get("result")}
    if type == EventType.FAILED:
        return {"status": "failed", "error": data.get("error")}
    if type == EventType.CANCELLED:
        return {"status": "failed", "error": "task was cancelled"}
    return None


def snapshot(task: Row, review: Row | None) -> dict[str, Any]:
    """The cookbook message that says where a task stands now, for a late subscriber."""
    status = task["status"]
    if status == TaskStatus.QUEUED:
        return {"status": "pending", "task_id": task["id"]}
    if status == TaskStatus.WAITING_FOR_REVIEW and review is not None:
        return {
            "status": "waiting_for_review",
            "output_to_review": json.loads(review["request"]).get("output"),
        }
    if status == TaskStatus.COMPLETED:
        result = json.loads(task["result"]) if task["result"] is not None else None
        return {"status": "completed", "final_result": result}
    if status == TaskStatus.FAILED:
        return {"status": "failed", "error": task["error"]}
    if status == TaskStatus.CANCELLED:
        return {"status": "failed", "error": "task was cancelled"}
    return {"status": "running"}
