"""lab.image.prune_images: an old base image goes once no host uses it (a recipe change left
~230 MB per image behind); one a running host sits on stays, whatever lab it belongs to."""
from __future__ import annotations

from pathlib import Path

from lab.image import mounted_on, prune_images, using_images


def image(cache: Path, name: str) -> Path:
    path = cache / name
    (path / "etc").mkdir(parents=True)
    (path / "etc/lab-image").write_text("{}\n")
    return path


def overlay(lower: Path, target: str = "/var/lib/hosting-lab/x/hosts/proxy/root") -> str:
    return (f"812 27 0:95 / {target} rw,relatime shared:400 - overlay overlay "
            f"rw,lowerdir={lower},upperdir=/var/lib/hosting-lab/x/hosts/proxy/upper,"
            "workdir=/var/lib/hosting-lab/x/hosts/proxy/work\n")


def test_prune_images_unused_old_image_is_removed(tmp_path: Path) -> None:
    current, old = image(tmp_path, "trixie-aaa"), image(tmp_path, "trixie-bbb")
    assert prune_images(tmp_path, current, mountinfo=overlay(current)) == ["trixie-bbb"]
    assert current.exists() and not old.exists()


def test_prune_images_image_under_a_running_host_is_kept(tmp_path: Path) -> None:
    current, old = image(tmp_path, "trixie-aaa"), image(tmp_path, "trixie-bbb")
    assert prune_images(tmp_path, current, mountinfo=overlay(old)) == []
    assert old.exists()


def test_prune_images_longer_name_with_same_prefix_does_not_protect(tmp_path: Path) -> None:
    current, old = image(tmp_path, "trixie-aaa"), image(tmp_path, "trixie-bbb")
    assert prune_images(tmp_path, current, mountinfo=overlay(Path(f"{old}x"))) == ["trixie-bbb"]


def test_prune_images_leaves_what_is_not_an_image(tmp_path: Path) -> None:
    current = image(tmp_path, "trixie-aaa")
    (tmp_path / ".build-trixie-ccc-12").mkdir()  # another lab's build in progress
    assert prune_images(tmp_path, current, mountinfo="") == []
    assert (tmp_path / ".build-trixie-ccc-12").exists()


def test_mounted_on_mount_inside_the_image_counts(tmp_path: Path) -> None:
    line = f"90 27 0:5 / {tmp_path}/img/proc rw - proc proc rw\n"
    assert mounted_on(line, tmp_path / "img")
    assert not mounted_on(line, tmp_path / "im")


def test_prune_images_while_another_lab_picks_its_image_removes_nothing(tmp_path: Path) -> None:
    current, old = image(tmp_path, "trixie-aaa"), image(tmp_path, "trixie-bbb")
    with using_images(tmp_path):  # another `up`, between ensure_image and mounting its hosts
        assert prune_images(tmp_path, current, mountinfo="") == []
    assert old.exists()
    assert prune_images(tmp_path, current, mountinfo="") == ["trixie-bbb"]
