"""The survey tools' data: Zigpoll's participants and responses and Typeform's responses.

The two draw from one random stream (the world's survey responses split 60/40 between them), so they are
built together, here; each tool's records and API live in its own module (``zigpoll``, ``typeform``).
"""

from __future__ import annotations

import numpy as np

from cdp_sandbox import typeform, zigpoll
from cdp_sandbox.core import WorldCore
from cdp_sandbox.formats import mongo_id, mongo_index, typeform_index, typeform_token
from cdp_sandbox.tables import Table


def build(world: WorldCore) -> None:
    """Zigpoll's participants and responses, then Typeform's responses, from one random stream."""
    rng = world.rng(5)
    n_zig = int(world.survey_responses * 0.6)
    n_tf = world.survey_responses - n_zig
    n_participants = max(1, (n_zig * 2) // 3) if n_zig else 0
    participant_person = rng.integers(0, world.learners, n_participants).astype(np.int32)
    participant_created = world.draw_after(rng, world.registered[participant_person], skew=2.0)
    order = np.argsort(participant_created, kind="stable")
    participant_person, participant_created = participant_person[order], participant_created[order]
    tags = {label: world.seed_tag(label) for label in ("zig_part", "zig_resp", "tf")}
    world.add_table(
        Table(
            "zigpoll",
            "participants",
            "_id",
            "createdAt",
            "created",
            participant_created,
            participant_created.copy(),
            participant_person,
            world.draw_malformed(rng, n_participants, ("malformed_email", "unknown_enum")),
            builder=lambda i: zigpoll.participant(world, i),
            id_of=lambda i: mongo_id(tags["zig_part"], i),
            index_of=lambda rid: mongo_index(rid, tags["zig_part"]),
            columns={"consent_research": rng.random(n_participants) < 0.85},
        )
    )
    response_participant = rng.integers(0, max(n_participants, 1), n_zig)
    response_created = world.draw_after(
        rng,
        participant_created[response_participant] if n_participants else np.full(n_zig, world.start_ts),
        skew=3.0,
    )
    order = np.argsort(response_created, kind="stable")
    response_participant, response_created = response_participant[order], response_created[order]
    world.add_table(
        Table(
            "zigpoll",
            "responses",
            "_id",
            "createdAt",
            "created",
            response_created,
            response_created.copy(),
            participant_person[response_participant] if n_participants else np.zeros(0, np.int32),
            world.draw_malformed(rng, n_zig, ("missing_required",)),
            builder=lambda i: zigpoll.response(world, i),
            id_of=lambda i: mongo_id(tags["zig_resp"], i),
            index_of=lambda rid: mongo_index(rid, tags["zig_resp"]),
            columns={
                "participant": response_participant,
                "has_age": rng.random(n_zig) > 0.15,
                "score": rng.integers(1, 6, n_zig),
            },
        )
    )

    tf_person = rng.integers(0, world.learners, n_tf).astype(np.int32)
    tf_submitted = world.draw_after(rng, world.registered[tf_person], skew=2.0)
    order = np.argsort(tf_submitted, kind="stable")
    tf_person, tf_submitted = tf_person[order], tf_submitted[order]
    world.add_table(
        Table(
            "typeform",
            "responses",
            "response_id",
            "submitted_at",
            "created",
            tf_submitted,
            tf_submitted.copy(),
            tf_person,
            world.draw_malformed(rng, n_tf, ("missing_required", "malformed_email")),
            builder=lambda i: typeform.response(world, i),
            id_of=lambda i: typeform_token(tags["tf"], i),
            index_of=lambda rid: typeform_index(rid, tags["tf"]),
            columns={
                "has_age": rng.random(n_tf) > 0.15,
                "score": rng.integers(0, 11, n_tf),
                "consent": rng.random(n_tf) < 0.8,
            },
        )
    )
