"""Skeleton layouts: joint names, kinematic tree, bones, body parts and centre joint.

A layout describes the joint axis ``V`` of the canonical tensor ``(N, C, T, V, M)``. Built-ins:

- ``ntu25``: NTU RGB+D / Kinect v2 (0-based order of the NTU ``.skeleton`` files). Parents follow the
  Kinect v2 kinematic tree (hand tip and thumb attach to the hand), rooted at SpineBase.
- ``kinect20``: Kinect v1 SDK order, as used by NW-UCLA.
- ``msr20``: MSR Action3D's order (Vemulapalli et al.'s ``body_model.mat``).
- ``utd20``: UTD-MHAD's order (``Skeleton_joint_order.txt``).
- ``hdm05``: the 25-joint HDM05 order of the prior benchmark (RobustBenchHAR ``CDataset.parents``).

The three Kinect v1 orders hold the same 20 joints in different orders: they are distinct layouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ConfigError, LayoutMismatchError
from .registry import Registry


@dataclass(frozen=True)
class SkeletonLayout:
    """A named skeleton: the meaning of each joint index.

    Attributes:
        name: Registry name (``ntu25``...).
        joint_names: One name per joint, in tensor order.
        parents: Parent index of each joint in the kinematic tree; ``-1`` for the root.
        center: The joint datasets and adapters centre on.
        parts: Body parts, name -> joint indices (each joint in exactly one part).
        description: Where the order comes from.
    """

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    center: int
    parts: dict[str, tuple[int, ...]] = field(default_factory=dict, hash=False, compare=False)
    description: str = ""

    def __post_init__(self) -> None:
        v = len(self.joint_names)
        if len(self.parents) != v:
            raise ConfigError(f"layout {self.name!r}: {len(self.parents)} parents for {v} joints")
        roots = [j for j, p in enumerate(self.parents) if p == -1]
        if len(roots) != 1:
            raise ConfigError(f"layout {self.name!r}: expected exactly one root (parent -1), found {roots}")
        if not 0 <= self.center < v:
            raise ConfigError(f"layout {self.name!r}: centre joint {self.center} out of range 0..{v - 1}")
        for j in range(v):  # every joint must reach the root without a cycle
            seen, k = set(), j
            while k != -1:
                if k in seen or not -1 <= self.parents[k] < v:
                    raise ConfigError(f"layout {self.name!r}: joint {j} does not reach the root")
                seen.add(k)
                k = self.parents[k]
        covered = sorted(j for part in self.parts.values() for j in part)
        if self.parts and covered != list(range(v)):
            raise ConfigError(f"layout {self.name!r}: body parts must cover every joint exactly once")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def root(self) -> int:
        return self.parents.index(-1)

    @property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """(child, parent) pairs, one per non-root joint, in joint order."""
        return tuple((j, p) for j, p in enumerate(self.parents) if p != -1)

    @property
    def topological_order(self) -> tuple[int, ...]:
        """Joints ordered so that every parent precedes its children (breadth first from the root)."""
        order, frontier = [], [self.root]
        while frontier:
            order.extend(frontier)
            frontier = [j for p in frontier for j, q in enumerate(self.parents) if q == p]
        return tuple(order)

    def index(self, joint_name: str) -> int:
        """Index of a joint by name."""
        try:
            return self.joint_names.index(joint_name)
        except ValueError:
            raise ConfigError(f"layout {self.name!r} has no joint {joint_name!r}") from None

    def check_joints(self, num_joints: int, what: str) -> None:
        """Raise :class:`LayoutMismatchError` naming ``what`` unless it has this layout's joint count."""
        if num_joints != self.num_joints:
            raise LayoutMismatchError(
                f"{what} has {num_joints} joints but layout {self.name!r} has {self.num_joints}"
            )


LAYOUTS: Registry[SkeletonLayout] = Registry("layout")


def register_layout(layout: SkeletonLayout) -> SkeletonLayout:
    """Add a layout to the registry (user layouts too) and return it."""
    LAYOUTS.register(layout.name, layout, num_joints=layout.num_joints, description=layout.description)
    return layout


def get_layout(layout: str | SkeletonLayout) -> SkeletonLayout:
    """Resolve a layout name (or pass a layout through)."""
    return layout if isinstance(layout, SkeletonLayout) else LAYOUTS.get(layout)


#: The five body parts of the 20 Kinect v1 joints, by joint name (shared by kinect20, msr20 and utd20).
_KINECT_V1_PARTS = {
    "torso": ("hip_center", "spine", "shoulder_center", "head"),
    "left_arm": ("shoulder_left", "elbow_left", "wrist_left", "hand_left"),
    "right_arm": ("shoulder_right", "elbow_right", "wrist_right", "hand_right"),
    "left_leg": ("hip_left", "knee_left", "ankle_left", "foot_left"),
    "right_leg": ("hip_right", "knee_right", "ankle_right", "foot_right"),
}


def _kinect_v1_layout(
    name: str, joint_names: tuple[str, ...], parents: tuple[int, ...], center: int, description: str
) -> SkeletonLayout:
    """A layout of the 20 Kinect v1 joints in some order; its body parts follow from the joint names."""
    parts = {part: tuple(sorted(joint_names.index(j) for j in members)) for part, members in _KINECT_V1_PARTS.items()}
    return SkeletonLayout(name=name, joint_names=joint_names, parents=parents, center=center, parts=parts,
                          description=description)


NTU25 = register_layout(
    SkeletonLayout(
        name="ntu25",
        joint_names=(
            "spine_base", "spine_mid", "neck", "head",
            "shoulder_left", "elbow_left", "wrist_left", "hand_left",
            "shoulder_right", "elbow_right", "wrist_right", "hand_right",
            "hip_left", "knee_left", "ankle_left", "foot_left",
            "hip_right", "knee_right", "ankle_right", "foot_right",
            "spine_shoulder", "hand_tip_left", "thumb_left", "hand_tip_right", "thumb_right",
        ),
        parents=(-1, 0, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18, 1, 7, 7, 11, 11),
        center=1,
        parts={
            "torso": (0, 1, 2, 3, 20),
            "left_arm": (4, 5, 6, 7, 21, 22),
            "right_arm": (8, 9, 10, 11, 23, 24),
            "left_leg": (12, 13, 14, 15),
            "right_leg": (16, 17, 18, 19),
        },
        description="NTU RGB+D 60/120, Kinect v2, 25 joints (0-based .skeleton order)",
    )
)

KINECT20 = register_layout(
    _kinect_v1_layout(
        name="kinect20",
        joint_names=(
            "hip_center", "spine", "shoulder_center", "head",
            "shoulder_left", "elbow_left", "wrist_left", "hand_left",
            "shoulder_right", "elbow_right", "wrist_right", "hand_right",
            "hip_left", "knee_left", "ankle_left", "foot_left",
            "hip_right", "knee_right", "ankle_right", "foot_right",
        ),
        parents=(-1, 0, 1, 2, 2, 4, 5, 6, 2, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18),
        center=1,
        description="Kinect v1 SDK order, 20 joints (NW-UCLA)",
    )
)

MSR20 = register_layout(
    _kinect_v1_layout(
        name="msr20",
        joint_names=(
            "shoulder_left", "shoulder_right", "shoulder_center", "spine", "hip_left", "hip_right", "hip_center",
            "elbow_left", "elbow_right", "wrist_left", "wrist_right", "hand_left", "hand_right",
            "knee_left", "knee_right", "ankle_left", "ankle_right", "foot_left", "foot_right", "head",
        ),
        parents=(2, 2, 3, 6, 6, 6, -1, 0, 1, 7, 8, 9, 10, 4, 5, 13, 14, 15, 16, 2),
        center=3,
        description="MSR Action3D order, 20 joints (Vemulapalli et al. body_model.mat)",
    )
)

UTD20 = register_layout(
    _kinect_v1_layout(
        name="utd20",
        joint_names=(
            "head", "shoulder_center", "spine", "hip_center",
            "shoulder_left", "elbow_left", "wrist_left", "hand_left",
            "shoulder_right", "elbow_right", "wrist_right", "hand_right",
            "hip_left", "knee_left", "ankle_left", "foot_left",
            "hip_right", "knee_right", "ankle_right", "foot_right",
        ),
        parents=(1, 2, 3, -1, 1, 4, 5, 6, 1, 8, 9, 10, 3, 12, 13, 14, 3, 16, 17, 18),
        center=2,
        description="UTD-MHAD order, 20 joints (Skeleton_joint_order.txt)",
    )
)

HDM05 = register_layout(
    SkeletonLayout(
        name="hdm05",
        joint_names=(
            "hip_left", "knee_left", "ankle_left", "foot_left", "toe_left",
            "hip_right", "knee_right", "ankle_right", "foot_right", "toe_right",
            "root", "lower_back", "upper_back", "thorax", "head",
            "clavicle_left", "shoulder_left", "elbow_left", "wrist_left", "hand_left",
            "clavicle_right", "shoulder_right", "elbow_right", "wrist_right", "hand_right",
        ),
        parents=(10, 0, 1, 2, 3, 10, 5, 6, 7, 8, -1, 10, 11, 12, 13, 13, 15, 16, 17, 18, 13, 20, 21, 22, 23),
        center=10,
        parts={
            "left_leg": (0, 1, 2, 3, 4),
            "right_leg": (5, 6, 7, 8, 9),
            "torso": (10, 11, 12, 13, 14),
            "left_arm": (15, 16, 17, 18, 19),
            "right_arm": (20, 21, 22, 23, 24),
        },
        description="HDM05, 25 of 31 joints, RobustBenchHAR order (BEAT preprocessing)",
    )
)
