"""Turn a scene seed into one training sample: shaded RGB image plus five label maps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datasets.synthetic.render import Hits, camera_rays, camera_to_world, cast
from datasets.synthetic.scene import (
    BOX,
    CEILING,
    CYLINDER,
    FLOOR,
    PICTURE,
    SPHERE,
    WALL,
    Primitive,
    Room,
    sample_objects,
    sample_room,
)


@dataclass(frozen=True)
class RenderSettings:
    """How scenes are drawn; every field enters the cache key."""

    height: int = 48
    width: int = 64
    fov_deg: float = 70.0
    min_objects: int = 3
    max_objects: int = 7
    noise_std: float = 0.04
    keypoint_sigma_px: float = 1.2
    crease_deg: float = 20.0


def render_sample(seed: int, settings: RenderSettings) -> dict[str, np.ndarray]:
    """Render scene ``seed``: ``image`` [3,H,W] float32 in [0,1], ``seg`` [H,W] uint8,
    ``normal`` [3,H,W], ``depth`` [1,H,W] metres, ``keypoint`` and ``edge`` [1,H,W] in [0,1]."""
    rng = np.random.default_rng(seed)
    room = sample_room(rng)
    objects = sample_objects(rng, room, settings.min_objects, settings.max_objects)
    h, w = settings.height, settings.width
    cam_dirs, world_dirs, focal = camera_rays(h, w, settings.fov_deg, room)
    hits = cast(np.zeros_like(world_dirs), world_dirs, room, objects, planes=True)
    points = hits.t[:, None] * world_dirs
    cam_to_world = camera_to_world(room)

    world_normal = hits.normal / np.linalg.norm(hits.normal, axis=1, keepdims=True)
    facing_away = np.einsum("ij,ij->i", world_normal, world_dirs) > 0
    world_normal[facing_away] *= -1
    depth = (hits.t * cam_dirs[:, 2]).reshape(h, w)
    normal = (world_normal @ cam_to_world).reshape(h, w, 3)
    obj = hits.obj.reshape(h, w)

    image = _shade(rng, room, objects, hits, points, world_normal, settings.noise_std)
    edge = _edges(obj, normal, settings.crease_deg)
    keypoint = _keypoints(room, objects, cam_to_world, depth, focal, settings.keypoint_sigma_px)
    return {
        "image": image.reshape(h, w, 3).transpose(2, 0, 1).astype(np.float32),
        "seg": hits.cls.reshape(h, w).astype(np.uint8),
        "normal": normal.transpose(2, 0, 1).astype(np.float32),
        "depth": depth[None].astype(np.float32),
        "keypoint": keypoint[None].astype(np.float32),
        "edge": edge[None].astype(np.float32),
    }


def _texture(cls: np.ndarray, p: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Per-class procedural pattern in [0.5, 1]: the class shows in texture, not in colour."""
    x, y, z = p[:, 0] + phase[0], p[:, 1] + phase[1], p[:, 2] + phase[2]
    patterns = {
        FLOOR: 0.75 + 0.25 * ((np.floor(x * 2) + np.floor(z * 2)) % 2),
        WALL: 0.85 + 0.15 * np.sign(np.sin(25 * (x + z))),
        CEILING: np.full(len(p), 0.95),
        SPHERE: 0.8 + 0.2 * np.sin(12 * x) * np.sin(12 * y) * np.sin(12 * z),
        BOX: 0.8 + 0.2 * np.sin(20 * (x + z) + 3 * np.sin(6 * y)),
        CYLINDER: 0.8 + 0.2 * np.sign(np.sin(18 * y)),
        PICTURE: 0.5 + 0.5 * np.abs(np.sin(30 * x) * np.cos(30 * y)),
    }
    out = np.ones(len(p))
    for cls_id, pattern in patterns.items():
        sel = cls == cls_id
        out[sel] = pattern[sel]
    return out


def _albedo(rng: np.random.Generator, room: Room, objects: list[Primitive], hits: Hits):
    palette = np.zeros((10 + len(objects), 3))
    for plane_id, cls_id in enumerate((FLOOR, CEILING, WALL, WALL, WALL)):
        palette[plane_id] = room.colors[cls_id]
    palette[5:10] = rng.uniform(0.2, 1.0, size=(5, 3))  # pictures
    for index, primitive in enumerate(objects):
        palette[10 + index] = primitive.color
    return palette[hits.obj]


def _shade(rng, room, objects, hits: Hits, points, normal, noise_std: float) -> np.ndarray:
    """Lambertian point light with cast shadows from the objects, ambient term and sensor noise."""
    albedo = (
        _albedo(rng, room, objects, hits)
        * _texture(hits.cls, points, rng.uniform(0, 3, 3))[:, None]
    )
    to_light = room.light - points
    distance = np.linalg.norm(to_light, axis=1)
    to_light /= distance[:, None]
    diffuse = np.clip(np.einsum("ij,ij->i", normal, to_light), 0, None)
    shadow = cast(points + 1e-3 * normal, to_light, room, objects, planes=False)
    diffuse[shadow.t < distance] *= 0.25
    intensity = 0.3 + 0.9 * diffuse / (1 + 0.03 * distance**2)
    image = albedo * intensity[:, None] * np.exp(rng.normal(0, 0.1))
    image += rng.normal(0, noise_std, image.shape)
    return np.clip(image, 0, 1)


def _edges(obj: np.ndarray, normal: np.ndarray, crease_deg: float) -> np.ndarray:
    """Occlusion/boundary edges (object id changes) and creases (normal turns by > crease_deg)."""
    cos_limit = np.cos(np.deg2rad(crease_deg))
    edge = np.zeros(obj.shape, bool)
    for axis in (0, 1):
        a = [slice(None)] * 2
        b = [slice(None)] * 2
        a[axis], b[axis] = slice(None, -1), slice(1, None)
        a, b = tuple(a), tuple(b)
        differ = (obj[a] != obj[b]) | (np.sum(normal[a] * normal[b], axis=-1) < cos_limit)
        edge[a] |= differ
        edge[b] |= differ
    return edge.astype(np.float32)


def _corner_points(room: Room, objects: list[Primitive]) -> np.ndarray:
    """3D keypoints: the back wall's corners, box corners and cylinder top centres."""
    hw = room.half_width
    points = [(sx * hw, y, room.back_z) for sx in (-1, 1) for y in (room.floor_y, room.ceiling_y)]
    for primitive in objects:
        if primitive.cls == BOX:
            c, s = np.cos(primitive.yaw), np.sin(primitive.yaw)
            rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
            for corner in np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T:
                points.append(tuple(primitive.center + rot @ (corner * primitive.size)))
        elif primitive.cls == CYLINDER:
            points.append(tuple(primitive.center + np.array([0, primitive.size[1], 0])))
        elif primitive.cls == SPHERE:
            points.append(tuple(primitive.center + np.array([0, primitive.size[0], 0])))
    return np.array(points)


def _keypoints(room, objects, cam_to_world, depth, focal, sigma_px: float) -> np.ndarray:
    """Gaussian blobs at the keypoints the camera can see (depth test against the z-buffer)."""
    h, w = depth.shape
    cam = _corner_points(room, objects) @ cam_to_world  # world -> camera for row vectors
    heat = np.zeros((h, w))
    vv, uu = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    for x, y, z in cam:
        if z <= 0.1:
            continue
        u, v = focal * x / z + w / 2, focal * y / z + h / 2
        if not (0 <= u < w and 0 <= v < h):
            continue
        r0, c0 = int(v), int(u)
        window = depth[max(r0 - 1, 0) : r0 + 2, max(c0 - 1, 0) : c0 + 2]
        if np.min(np.abs(window - z)) > 0.05 * z + 0.02:
            continue  # hidden behind something nearer
        heat = np.maximum(heat, np.exp(-((uu - u) ** 2 + (vv - v) ** 2) / (2 * sigma_px**2)))
    return heat
