"""The emulator's runs (one per agent call) and the tags and feedback attached to them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bridge.emulator.ids import new_id
from bridge.emulator.records import ApiUser, ConversationRecord, RunRecord, now
from bridge.emulator.tables import Tables
from bridge.engage.models import FeedbackRead, FeedbackUpsert, MessageRead, RunRead, TagRead


class Runs(Tables):
    """Record and find runs; tags on conversations and runs; feedback on runs."""

    def record_run(self, user: ApiUser, conversation_id: str, agent: str) -> RunRead:
        run = RunRead(
            id=new_id(),
            org_id=user.org_id,
            conversation_id=conversation_id,
            agent=agent,
            test=False,
            created=now(),
        )
        record = RunRecord(read=run, user_id=user.user_id)
        with self._writing() as store:
            self.runs[run.id] = record
            if store is not None:
                store.put_run(record)
        return run

    def drop_unanswered_runs(self) -> int:
        """Forget runs with no agent message: called when no process that could still be
        running them is alive (a restart after a kill), so a client retrying asks again
        instead of waiting for an answer that cannot come. Returns how many."""
        with self._writing() as store:
            answered = {
                m.run_id
                for c in self.conversations.values()
                for m in c.messages
                if m.role != "user"
            }
            dead = [run_id for run_id in self.runs if run_id not in answered]
            for run_id in dead:
                del self.runs[run_id]
                if store is not None:
                    store.delete_run(run_id)
        return len(dead)

    def runs_for(self, conversation_id: str) -> list[RunRead]:
        """Every chat call on the conversation, oldest first: one run per agent call."""
        with self._reading():
            return [r.read for r in self.runs.values() if r.read.conversation_id == conversation_id]

    def run(self, run_id: str, org_id: str) -> RunRecord | None:
        with self._reading():
            record = self.runs.get(run_id)
        return record if record is not None and record.read.org_id == org_id else None

    def find_runs(self, keep: Callable[[RunRecord], bool]) -> list[RunRecord]:
        with self._reading():
            return [r for r in self.runs.values() if keep(r)]

    def run_messages(self, run_id: str) -> list[MessageRead]:
        with self._reading():
            record = self.runs.get(run_id)
            if record is None:
                return []
            conversation = self.conversations.get(record.read.conversation_id)
            history = conversation.messages if conversation is not None else []
            return [m for m in history if m.run_id == run_id]

    # Tags

    def create_tag(self, org_id: str, name: str, description: str) -> TagRead | None:
        """None when the organisation already has a tag with that name."""
        with self._writing() as store:
            if any(t.org_id == org_id and t.name == name for t in self.tags.values()):
                return None
            tag = TagRead(id=new_id(), org_id=org_id, name=name, description=description)
            self.tags[tag.id] = tag
            if store is not None:
                store.put_tag(tag)
            return tag

    def tags_in(self, org_id: str) -> list[TagRead]:
        """An organisation's tags, oldest first."""
        with self._reading():
            return [t for t in self.tags.values() if t.org_id == org_id]

    def tag(self, tag_id: str, org_id: str) -> TagRead | None:
        with self._reading():
            tag = self.tags.get(tag_id)
        return tag if tag is not None and tag.org_id == org_id else None

    def tags_of(self, tag_ids: Sequence[str]) -> list[TagRead]:
        with self._reading():
            return [self.tags[t] for t in tag_ids if t in self.tags]

    def update_tag(self, tag_id: str, description: str | None) -> TagRead:
        with self._writing() as store:
            tag = self.tags[tag_id]
            if description is not None:
                tag = tag.model_copy(update={"description": description})
                self.tags[tag_id] = tag
                if store is not None:
                    store.put_tag(tag)
            return tag

    def delete_tag(self, tag_id: str) -> None:
        with self._writing() as store:
            self.tags.pop(tag_id, None)
            if store is not None:
                store.delete_tag(tag_id)
            for conversation in self.conversations.values():
                if tag_id in conversation.tag_ids:
                    conversation.tag_ids.remove(tag_id)
                    if store is not None:
                        store.put_conversation(conversation)
            for run in self.runs.values():
                if tag_id in run.tag_ids:
                    run.tag_ids.remove(tag_id)
                    if store is not None:
                        store.put_run(run)

    def set_tagged(
        self, owner: ConversationRecord | RunRecord, tag_id: str, tagged: bool
    ) -> list[TagRead]:
        """Add or remove a tag on a conversation or a run; all its tags after."""
        with self._writing() as store:
            # The caller's record may predate a reload: change the current one.
            if isinstance(owner, ConversationRecord):
                owner = self.conversations.get(owner.id, owner)
            else:
                owner = self.runs.get(owner.read.id, owner)
            tag_ids = owner.tag_ids
            if tagged and tag_id not in tag_ids:
                tag_ids.append(tag_id)
            if not tagged and tag_id in tag_ids:
                tag_ids.remove(tag_id)
            if store is not None:
                if isinstance(owner, ConversationRecord):
                    store.put_conversation(owner)
                else:
                    store.put_run(owner)
            return self.tags_of(tag_ids)

    # Feedback

    def upsert_feedback(self, run: RunRead, user_id: str, upsert: FeedbackUpsert) -> FeedbackRead:
        changes = upsert.model_dump(exclude_none=True)
        with self._writing() as store:
            old = self.feedback.get((run.id, user_id))
            if old is None:
                new = FeedbackRead(
                    id=new_id(),
                    org_id=run.org_id,
                    conversation_id=run.conversation_id,
                    run_id=run.id,
                    user_id=user_id,
                    created=now(),
                    **changes,
                )
            else:
                new = old.model_copy(update={**changes, "updated": now()})
            self.feedback[(run.id, user_id)] = new
            if store is not None:
                store.put_feedback(new)
            return new

    def feedback_where(self, keep: Callable[[FeedbackRead], bool]) -> list[FeedbackRead]:
        with self._reading():
            return [f for f in self.feedback.values() if keep(f)]
