"""Pictures of every task of some task sets after a reset, one PNG strip per set (docs/tasksets/)::

    MUJOCO_GL=egl python -m mtpolicy_training.envs.render          # --names ... --out-dir ... --width ... --height ...
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mtpolicy_training.envs.registry import make_task_set


@dataclass
class RenderConfig:
    """Render every task of some task sets after a reset: one PNG strip per set."""

    names: tuple[str, ...] = ("halfcheetah8", "hoppers3", "hopper-mass-3", "walker-fwd-bwd", "planar8", "humanoid",
                              "planar8-variants", "humanoid-variants", "mt10")
    """Task sets to render."""
    out_dir: Path = Path("docs/tasksets")
    """Directory of the PNGs (``<name>.png``)."""
    width: int = 480
    """Frame width (px)."""
    height: int = 360
    """Frame height (px)."""


def render_task_sets(config: RenderConfig) -> list[Path]:
    """Write ``<out_dir>/<name>.png``: the tasks' frames side by side (rows of 4), names as titles."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    config.out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in config.names:
        task_set = make_task_set(name)
        frames = task_set.render_tasks(config.width, config.height)
        titles = task_set.task_names if len(frames) == task_set.n_tasks else (" + ".join(task_set.task_names),)
        cols = min(4, len(frames))
        rows = -(-len(frames) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        for ax, frame, title in zip(axes.flat, frames, titles):
            ax.imshow(frame)
            ax.set_title(title, fontsize=9)
        fig.suptitle(name)
        fig.tight_layout(h_pad=1.5)
        paths.append(config.out_dir / f"{name}.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths


def main(argv: list[str] | None = None) -> None:
    import tyro

    for path in render_task_sets(tyro.cli(RenderConfig, args=argv)):
        print(path)


if __name__ == "__main__":
    main()
