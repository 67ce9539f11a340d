"""Joint-angle choreographies of the synthetic actions (used by :mod:`skelrobust.data.synthesis`).

Each action is a function ``(u, p) -> poses``: ``u`` is the action phase, float64 ``(n, T)``, running from
about 0 (start of the movement) to about 1 (end) over a sample's valid frames; ``p`` draws per-sample
parameters as ``(n, 1)`` columns. It returns one dict of joint-angle / root trajectories per person
(one dict for single-person actions, two for interactions: the actor first). Missing keys take the rest
value in :data:`REST`. The dominant arm/leg is the right one; left-handed samples are mirrored later.

Angle conventions (radians, body frame: x = subject's left, y = up, z = forward):

- ``lean``: forward bend of the spine (split between the lower and upper spine); ``roll``: sideways bend;
  ``twist``: torso yaw at the shoulders; ``neck``: forward nod; ``yaw``: whole-body turn.
- ``sh_flex_*``: raise the arm forward (pi/2 = horizontal forward); ``sh_abd_*``: raise it sideways;
  ``sh_hadd_*``: swing it horizontally towards the midline; ``sh_tw_*``: external rotation about the upper
  arm (makes the elbow bend upwards when the arm is abducted); ``elbow_*``: elbow flexion; ``wrist_*``.
- ``hip_flex_*``: raise the thigh forward; ``hip_abd_*``; ``knee_*``: knee flexion; ``ankle_*``.
- ``root_y``: lift of the body above its standing height (jumps); ``root_fwd``: forward displacement (m);
  ``stance``: weight of the left foot in anchoring the body to the floor (1 = standing on the left foot).

Classes are kinematically distinct but share sub-movements on purpose (arm raises in waving / saluting /
pointing, hands together in clapping / palms together / crossing hands, sit-down vs stand-up, punch vs
push), and the phase window of a sample may crop the start or end of the movement, so the set is not
trivially separable.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Poses = dict[str, np.ndarray]
ParamDraw = Callable[[float, float], np.ndarray]

#: Rest values of every pose channel (relaxed standing, arms hanging slightly away from the body).
REST: dict[str, float] = {
    "lean": 0.03, "roll": 0.0, "twist": 0.0, "neck": 0.05, "yaw": 0.0,
    "sh_flex_l": 0.05, "sh_abd_l": 0.12, "sh_hadd_l": 0.0, "sh_tw_l": 0.0, "elbow_l": 0.2, "wrist_l": 0.05,
    "sh_flex_r": 0.05, "sh_abd_r": 0.12, "sh_hadd_r": 0.0, "sh_tw_r": 0.0, "elbow_r": 0.2, "wrist_r": 0.05,
    "hip_flex_l": 0.0, "hip_abd_l": 0.04, "knee_l": 0.04, "ankle_l": 0.0,
    "hip_flex_r": 0.0, "hip_abd_r": 0.04, "knee_r": 0.04, "ankle_r": 0.0,
    "root_y": 0.0, "root_fwd": 0.0, "stance": 0.5,
}


def ramp(u: np.ndarray, a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """Smooth 0 -> 1 transition between phases ``a`` and ``b`` (smoothstep)."""
    s = np.clip((u - a) / np.maximum(b - a, 1e-6), 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


def window(u: np.ndarray, a, b, c, d) -> np.ndarray:
    """Smooth 0 -> 1 over ``[a, b]``, hold, 1 -> 0 over ``[c, d]``."""
    return ramp(u, a, b) * (1.0 - ramp(u, c, d))


def blend(rest: float, target: np.ndarray | float, w: np.ndarray) -> np.ndarray:
    """Interpolate from the rest value to ``target`` with weight ``w``."""
    return rest + (target - rest) * w


def osc(u: np.ndarray, cycles, phase) -> np.ndarray:
    """A sinusoid in phase, ``cycles`` periods over ``u`` in [0, 1]."""
    return np.sin(2.0 * np.pi * cycles * u + phase)


def _raise_window(u: np.ndarray, p: ParamDraw) -> np.ndarray:
    return window(u, p(0.0, 0.1), p(0.18, 0.3), p(0.72, 0.82), p(0.9, 1.0))


def hand_waving(u: np.ndarray, p: ParamDraw) -> list[Poses]:
    """Right arm raised sideways, forearm up, elbow swinging the hand left and right."""
    w = _raise_window(u, p)
    wave = osc(u, p(1.5, 4.0), p(0.0, 2 * np.pi)) * p(0.15, 0.45)
    r = REST
    return [{
        "sh_abd_r": blend(r["sh_abd_r"], p(1.0, 1.6), w),
        "sh_flex_r": blend(r["sh_flex_r"], p(0.1, 0.5), w),
        "sh_hadd_r": blend(0.0, p(-0.1, 0.55), w),
        "sh_tw_r": blend(0.0, p(1.0, 1.5), w),
        "elbow_r": blend(r["elbow_r"], p(0.9, 1.9) + wave, w),
        "wrist_r": blend(r["wrist_r"], p(-0.2, 0.2), w),
    }]


def salute(u: np.ndarray, p: ParamDraw) -> list[Poses]:
    """Right hand brought to the forehead and held there."""
    w = _raise_window(u, p)
    r = REST
    return [{
        "sh_abd_r": blend(r["sh_abd_r"], p(1.0, 1.35), w),
        "sh_flex_r": blend(r["sh_flex_r"], p(0.2, 0.5), w),
        "sh_hadd_r": blend(0.0, p(0.3, 0.75), w),
        "sh_tw_r": blend(0.0, p(1.0, 1.4), w),
        "elbow_r": blend(r["elbow_r"], p(1.7, 2.3), w) + 0.05 * osc(u, p(1.0, 2.0), p(0, 6.3)) * w,
        "wrist_r": blend(r["wrist_r"], p(0.0, 0.4), w),
        "neck": blend(r["neck"], p(-0.1, 0.1), w),
    }]


def pointing(u: np.ndarray, p: ParamDraw) -> list[Poses]:
    """Right arm stretched towards something ahead, held."""
    w = _raise_window(u, p)
    r = REST
    return [{
        "sh_flex_r": blend(r["sh_flex_r"], p(1.1, 1.8), w),
        "sh_abd_r": blend(r["sh_abd_r"], p(0.0, 0.5), w),
        "sh_hadd_r": blend(0.0, p(-0.3, 0.3), w),
        "elbow_r": blend(r["elbow_r"], p(0.05, 0.4), w),
        "wrist_r": blend(r["wrist_r"], p(-0.3, 0.1), w),
        "twist": blend(0.0, p(-0.15, 0.1), w),
    }]


def _hands_front(u: np.ndarray, p: ParamDraw, flex, hadd, elbow, tw=(0.0, 0.0)) -> tuple[Poses, np.ndarray]:
    w = _raise_window(u, p)
    r = REST
    pose: Poses = {}
    for s in ("l", "r"):
        pose[f"sh_flex_{s}"] = blend(r[f"sh_flex_{s}"], flex, w)
        pose[f"sh_abd_{s}"] = blend(r[f"sh_abd_{s}"], 0.0, w)
        pose[f"sh_hadd_{s}"] = blend(0.0, hadd, w)
        pose[f"sh_tw_{s}"] = blend(0.0, p(*tw), w)
        pose[f"elbow_{s}"] = blend(r[f"elbow_{s}"], elbow, w)
    return pose, w


def clapping(u: np.ndarray, p: ParamDraw) -> list[Poses]:
    """Hands in front of the chest, repeatedly brought together and apart."""
    beat = 0.5 + 0.5 * osc(u, p(2.5, 6.0), p(0.0, 2 * np.pi))
    pose, w = _hands_front(u, p, p(0.45, 0.9), p(0.35, 0.5) - p(0.08, 0.35) * beat, p(1.1, 1.7), tw=(-0.2, 0.0))
    for s in ("l", "r"):
        pose[f"wrist_{s}"] = blend(REST[f"wrist_{s}"], p(-0.4, 0.1), w)
    return [pose]


def palms_together(u: np.ndarray, p: ParamDraw) -> list[Poses]:
    """Palms joined in front of the chest and held (no clapping beat)."""
    pose, w = _hands_front(u, p, p(0.45, 0.85), p(0.35, 0.55), p(1.4, 2.0), tw=(-0.3, 0.0))
    drift = 0.04 * osc(u, p(0.5, 1.5), p(0.0, 2 * np.pi)) * w  # slight rocking of the joined hands
    for s in ("l", "r"):
        pose[f"wrist_{s}"] = blend(REST[f"wrist_{s}"], p(-0.6, -0.1), w)
        pose[f"sh_flex_{s}"] = pose[f"sh_flex_{s}"] + drift
    pose["neck"] = blend(REST["neck"], p(0.0, 0.3), w)
    return [pose]


def cross_hands(u: np.ndarray, p: ParamDraw) -> list[Poses]:
    """Forearms crossed in front of the body ("say stop"), held."""
    pose, w = _hands_front(u, p, p(0.75, 1.4), p(0.5, 0.85), p(0.3, 1.2))
    pose["sh_hadd_l"] = pose["sh_hadd_l"] + 0.1 * w  # left arm crosses over the right
    return [pose]


def throw(u: np.ndarray, p: ParamDraw) -> list[Poses]:
    """Right arm cocked back overhead, then whipped forward with a torso rotation and release."""
    t_cock = p(0.3, 0.45)
    t_rel = t_cock + p(0.12, 0.22)
    cock = window(u, p(0.05, 0.15), t_cock, t_cock + 0.02, t_rel)
    fwd = window(u, t_cock + 0.03, t_rel, p(0.7, 0.8), p(0.9, 1.0))
    r = REST
    return [{
        "sh_abd_r": r["sh_abd_r"] + (p(1.2, 1.6) - r["sh_abd_r"]) * cock + p(0.1, 0.4) * fwd,
        "sh_hadd_r": p(-0.6, -0.3) * cock + p(0.2, 0.6) * fwd,
        "sh_tw_r": p(1.2, 1.6) * cock,
        "sh_flex_r": r["sh_flex_r"] + p(1.0, 1.5) * fwd,
        "elbow_r": r["elbow_r"] + (p(1.4, 2.0) - r["elbow_r"]) * cock - 0.1 * fwd,
        "twist": p(-0.5, -0.25) * cock + p(0.2, 0.4) * fwd,
        "lean": r["lean"] - 0.1 * cock + p(0.1, 0.3) * fwd,
        "sh_flex_l": r["sh_flex_l"] + p(0.3, 0.8) * cock,
        "hip_flex_l": p(0.1, 0.35) * fwd,
        "knee_l": r["knee_l"] + p(0.1, 0.3) * fwd,
    }]


def kicking(u: np.ndarray, p: ParamDraw) -> list[Poses]:
    """Standing on the left foot, the right leg swings back then kicks forward."""
    t_back = p(0.3, 0.4)
    t_kick = t_back + p(0.1, 0.18)
    back = window(u, p(0.1, 0.2), t_back, t_back + 0.02, t_kick)
    kick = window(u, t_back + 0.03, t_kick, t_kick + p(0.05, 0.15), p(0.75, 0.95))
    lift = window(u, p(0.05, 0.15), p(0.2, 0.3), p(0.7, 0.8), p(0.88, 1.0))
    r = REST
    return [{
        "hip_flex_r": -p(0.1, 0.35) * back + p(0.5, 1.3) * kick,
        "knee_r": r["knee_r"] + p(0.8, 1.4) * back + p(0.0, 0.2) * kick,
        "ankle_r": p(0.1, 0.4) * kick,
        "stance": 0.5 + 0.5 * lift,
        "lean": r["lean"] - p(0.05, 0.2) * kick,
        "sh_abd_l": r["sh_abd_l"] + p(0.2, 0.5) * kick,
        "sh_abd_r": r["sh_abd_r"] + p(0.2, 0.5) * kick,
        "sh_flex_l": r["sh_flex_l"] + p(0.0, 0.4) * back,
    }]


def hopping(u: np.ndarray, p: ParamDraw) -> list[Poses]:
    """Right foot held up, repeated small hops on the left foot."""
    lift = window(u, p(0.0, 0.1), p(0.12, 0.22), p(0.8, 0.88), p(0.92, 1.0))
    hops = np.maximum(osc(u, p(2.0, 4.0), p(0.0, 2 * np.pi)), 0.0) * lift
    r = REST
    return [{
        "hip_flex_r": p(0.2, 0.6) * lift,
        "knee_r": r["knee_r"] + p(0.5, 1.4) * lift,
        "knee_l": r["knee_l"] + p(0.1, 0.3) * lift * (1.0 - hops),
        "hip_flex_l": p(0.05, 0.2) * lift * (1.0 - hops),
        "root_y": p(0.05, 0.14) * hops,
        "stance": 0.5 + 0.5 * lift,
        "sh_abd_l": r["sh_abd_l"] + p(0.1, 0.4) * lift,
        "sh_abd_r": r["sh_abd_r"] + p(0.1, 0.4) * lift,
        "elbow_l": r["elbow_l"] + p(0.2, 0.8) * lift,
        "elbow_r": r["elbow_r"] + p(0.2, 0.8) * lift,
    }]


def jump_up(u: np.ndarray, p: ParamDraw) -> list[Poses]:
    """Crouch, jump straight up with the arms swinging up, land, stand."""
    t_take = p(0.3, 0.45)
    t_land = t_take + p(0.15, 0.25)
    crouch = window(u, p(0.05, 0.15), t_take - 0.05, t_take - 0.02, t_take + 0.02) + window(
        u, t_land - 0.02, t_land + 0.03, t_land + 0.06, p(0.8, 0.95)
    )
    flight = np.sin(np.pi * np.clip((u - t_take) / (t_land - t_take), 0.0, 1.0))
    arms = window(u, t_take - 0.1, t_take + 0.02, t_land - 0.05, t_land + 0.1)
    depth = p(0.25, 0.9)
    r = REST
    pose: Poses = {
        "root_y": p(0.08, 0.35) * flight,
        "lean": r["lean"] + depth * 0.5 * crouch,
        "sh_flex_l": r["sh_flex_l"] + p(1.5, 2.6) * arms - 0.4 * crouch,
        "sh_flex_r": r["sh_flex_r"] + p(1.5, 2.6) * arms - 0.4 * crouch,
    }
    for s in ("l", "r"):
        pose[f"hip_flex_{s}"] = depth * crouch + 0.1 * flight
        pose[f"knee_{s}"] = r[f"knee_{s}"] + 1.6 * depth * crouch + 0.2 * flight
        pose[f"ankle_{s}"] = 0.4 * depth * crouch - 0.3 * flight
    return [pose]


def _sit(s: np.ndarray, u: np.ndarray, p: ParamDraw, lean_peak: float) -> Poses:
    """Pose along the sit transition ``s`` (0 standing, 1 seated) with a forward lean while moving."""
    moving = 4.0 * s * (1.0 - s)
    hip, knee = p(1.3, 1.6), p(1.3, 1.7)
    r = REST
    return {
        "hip_flex_l": hip * s, "hip_flex_r": hip * s,
        "knee_l": r["knee_l"] + knee * s, "knee_r": r["knee_r"] + knee * s,
        "ankle_l": 0.25 * s, "ankle_r": 0.25 * s,
        "lean": r["lean"] + lean_peak * moving + p(0.0, 0.15) * s,
        "neck": r["neck"] + 0.2 * moving,
        "sh_flex_l": r["sh_flex_l"] + p(0.2, 0.7) * moving + p(0.1, 0.4) * s,
        "sh_flex_r": r["sh_flex_r"] + p(0.2, 0.7) * moving + p(0.1, 0.4) * s,
        "elbow_l": r["elbow_l"] + p(0.3, 0.9) * s,
        "elbow_r": r["elbow_r"] + p(0.3, 0.9) * s,
    }


def sitting_down(u: np.ndarray, p: ParamDraw) -> list[Poses]:
    """Standing, then lowering onto a seat: a slow controlled descent at the end."""
    s = ramp(u, p(0.1, 0.25), p(0.6, 0.85))
    return [_sit(s, u, p, p(0.2, 0.45))]


def standing_up(u: np.ndarray, p: ParamDraw) -> list[Poses]:
    """Seated, then leaning forward and rising: the strong lean comes first."""
    s = 1.0 - ramp(u, p(0.1, 0.3), p(0.55, 0.8))
    return [_sit(s, u, p, p(0.35, 0.65))]


def bow(u: np.ndarray, p: ParamDraw) -> list[Poses]:
    """A bow from the hips with a head nod (small bows are mostly a nod)."""
    w = window(u, p(0.05, 0.2), p(0.3, 0.45), p(0.55, 0.7), p(0.8, 0.98))
    depth = p(0.1, 0.7)
    r = REST
    return [{
        "lean": r["lean"] + depth * w,
        "neck": r["neck"] + p(0.2, 0.5) * w,
        "sh_flex_l": r["sh_flex_l"] + 0.3 * depth * w,
        "sh_flex_r": r["sh_flex_r"] + 0.3 * depth * w,
        "hip_flex_l": -0.1 * depth * w, "hip_flex_r": -0.1 * depth * w,
    }]


def _reaction(u: np.ndarray, hit: np.ndarray, p: ParamDraw, push_back: float) -> Poses:
    """The partner's response to a contact at weight ``hit``: lean and step back, arms lift a little."""
    back = hit
    r = REST
    return {
        "lean": r["lean"] - p(0.1, 0.3) * back,
        "neck": r["neck"] - p(0.1, 0.3) * back,
        "root_fwd": -push_back * np.maximum.accumulate(back, axis=1),
        "sh_flex_l": r["sh_flex_l"] + p(0.2, 0.6) * back,
        "sh_flex_r": r["sh_flex_r"] + p(0.2, 0.6) * back,
        "elbow_l": r["elbow_l"] + p(0.3, 0.9) * back,
        "elbow_r": r["elbow_r"] + p(0.3, 0.9) * back,
    }


def punching(u: np.ndarray, p: ParamDraw) -> list[Poses]:
    """The actor throws one or two fast right punches from a guard; the partner flinches."""
    guard = window(u, p(0.0, 0.1), p(0.15, 0.25), p(0.75, 0.85), p(0.9, 1.0))
    strikes = np.maximum(osc(u - 0.25, p(1.5, 2.5), -np.pi / 2), 0.0) ** 2 * guard
    r = REST
    actor: Poses = {
        "sh_flex_r": blend(r["sh_flex_r"], p(0.5, 0.9), guard) + p(0.6, 0.9) * strikes,
        "sh_hadd_r": p(0.1, 0.4) * guard,
        "elbow_r": blend(r["elbow_r"], p(1.8, 2.3), guard) - p(1.5, 1.9) * strikes,
        "sh_flex_l": blend(r["sh_flex_l"], p(0.5, 0.9), guard),
        "elbow_l": blend(r["elbow_l"], p(1.8, 2.3), guard),
        "twist": p(0.1, 0.3) * strikes,
        "lean": r["lean"] + p(0.05, 0.2) * guard,
        "root_fwd": p(0.0, 0.15) * guard,
    }
    return [actor, _reaction(u, 0.5 * strikes, p, p(0.0, 0.1))]


def pushing(u: np.ndarray, p: ParamDraw) -> list[Poses]:
    """The actor pushes with both arms and steps in; the partner is pushed back."""
    t_push = p(0.35, 0.55)
    reach = window(u, p(0.05, 0.2), t_push, t_push + p(0.05, 0.15), p(0.8, 0.95))
    extend = ramp(u, t_push - 0.1, t_push + 0.05) * reach
    r = REST
    actor: Poses = {"lean": r["lean"] + p(0.1, 0.3) * extend, "root_fwd": p(0.05, 0.25) * extend}
    weak = p(0.0, 1.0)  # how much the left arm takes part: some pushes are mostly one-handed
    for s, share in (("l", weak), ("r", 1.0)):
        actor[f"sh_flex_{s}"] = blend(r[f"sh_flex_{s}"], p(1.0, 1.5), reach * share)
        actor[f"sh_hadd_{s}"] = p(0.0, 0.3) * reach * share
        actor[f"elbow_{s}"] = blend(r[f"elbow_{s}"], p(1.5, 2.0), reach * share) - p(1.0, 1.5) * extend * share
    return [actor, _reaction(u, extend, p, p(0.15, 0.4))]


def handshaking(u: np.ndarray, p: ParamDraw) -> list[Poses]:
    """Both partners extend their right hands, pump them a few times, and let go."""
    out = []
    for _ in range(2):
        w = window(u, p(0.0, 0.15), p(0.2, 0.35), p(0.7, 0.85), p(0.9, 1.0))
        pump = osc(u, p(2.0, 4.0), p(0.0, 2 * np.pi)) * p(0.05, 0.15) * w
        r = REST
        out.append({
            "sh_flex_r": blend(r["sh_flex_r"], p(0.6, 0.9), w) + pump,
            "sh_hadd_r": p(0.1, 0.35) * w,
            "elbow_r": blend(r["elbow_r"], p(0.5, 0.9), w) - pump,
            "lean": r["lean"] + p(0.0, 0.12) * w,
            "root_fwd": p(0.0, 0.12) * w,
        })
    return out


#: Distance range (m) between the two partners' bodies, per interaction (NTU action number).
SPACING: dict[int, tuple[float, float]] = {50: (0.8, 1.0), 52: (0.7, 0.9), 58: (0.95, 1.2)}

#: (NTU action number, NTU class name, choreography, number of persons) of every synthetic class, in label order.
ACTIONS: tuple[tuple[int, str, Callable[[np.ndarray, ParamDraw], list[Poses]], int], ...] = (
    (7, "throw", throw, 1),
    (8, "sitting down", sitting_down, 1),
    (9, "standing up (from sitting position)", standing_up, 1),
    (10, "clapping", clapping, 1),
    (23, "hand waving", hand_waving, 1),
    (24, "kicking something", kicking, 1),
    (26, "hopping (one foot jumping)", hopping, 1),
    (27, "jump up", jump_up, 1),
    (31, "pointing to something with finger", pointing, 1),
    (35, "nod head/bow", bow, 1),
    (38, "salute", salute, 1),
    (39, "put the palms together", palms_together, 1),
    (40, "cross hands in front (say stop)", cross_hands, 1),
    (50, "punching/slapping other person", punching, 2),
    (52, "pushing other person", pushing, 2),
    (58, "handshaking", handshaking, 2),
)
