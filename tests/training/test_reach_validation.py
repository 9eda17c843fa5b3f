"""The validation screen of exported reach policies: a shipped policy and its teacher, each also behind the collision
guard, side by side."""

import json

from benchmarks.reach_validation import SHOWN, main
from mtpolicy.policy import MODELS_DIR
from mtpolicy_training.envs.seeds import VALIDATION_SEED


def test_a_shipped_policy_and_its_teacher_are_validated_side_by_side(tmp_path, capsys):
    model = str(MODELS_DIR / "planar8_reach.onnx")
    main([model, "--teacher", "--collision-guard", "--seed", str(VALIDATION_SEED), "--episodes", "2",
          "--bound-cache", str(tmp_path)])
    rows = json.loads(capsys.readouterr().out)
    teacher = next(name for name in rows if name != model and not name.endswith(" guarded"))
    assert set(rows) == {model, f"{model} guarded", teacher, f"{teacher} guarded"}
    assert rows[f"{teacher} guarded"] == rows[teacher]  # planar8's geoms never touch: the guard passes every command
    for figures in rows.values():
        assert set(figures[str(VALIDATION_SEED)]) == set(SHOWN) | {"self_collision_rate"} | {
            f"error_{q}_ee_{i}" for q in ("median", "p90") for i in (1, 2, 3)}
        assert figures[str(VALIDATION_SEED)]["success_rate"] == 1.0
        assert figures[str(VALIDATION_SEED)]["self_collision_rate"] == 0.0
