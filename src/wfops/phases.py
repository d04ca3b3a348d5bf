"""The runbook's phases as data: what each is called, which playbook runs it, what it does."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    """One phase of the WeddingFlo runbook and the playbook that runs it."""

    name: str
    runbook_number: int
    playbook: str
    description: str
    # Auxiliary phases reuse a runbook phase's parts (verify: phase 4's checks) and are not in the runbook's list.
    auxiliary: bool = False
    # The role, when another phase's role implements this one (drill: the backup role's drill tasks).
    role_name: str | None = None

    @property
    def role(self) -> str:
        """The Ansible role implementing the phase (role names cannot contain dashes)."""
        return self.role_name or self.name.replace("-", "_")

    @property
    def stats_key(self) -> str:
        """The set_stats key under which the phase reports its result."""
        return f"wfops_{self.name.replace('-', '_')}"


PHASES: tuple[Phase, ...] = (
    Phase(
        "preflight",
        1,
        "playbooks/preflight.yml",
        "Pre-deployment checks in the app checkout: tsc, vitest, build, drizzle-kit check",
    ),
    Phase(
        "backup",
        2,
        "playbooks/backup.yml",
        "pg_dump --format=custom of the database, verified, with a manifest; retention",
    ),
    Phase(
        "migrate",
        3,
        "playbooks/migrate.yml",
        "Apply the release's pending Drizzle migrations under a lock, verified first",
    ),
    Phase(
        "normalize",
        4,
        "playbooks/normalize.yml",
        "The five-section data normalisation in batches, then the data invariants",
    ),
    Phase(
        "deploy",
        5,
        "playbooks/deploy.yml",
        "Deploy the release through Dokploy's API and wait until the app is healthy",
    ),
    Phase(
        "smoke",
        6,
        "playbooks/smoke.yml",
        "Automated smoke checks of the deployed app and database; the manual checklist",
    ),
    Phase(
        "monitor",
        7,
        "playbooks/monitor.yml",
        "The runbook's eight signals for the first 24 hours after a release",
    ),
    Phase(
        "rollback",
        8,
        "playbooks/rollback.yml",
        "Return to the previous deployment; restore the database backup when asked",
    ),
    Phase(
        "stats-repair",
        9,
        "playbooks/stats-repair.yml",
        "Emergency SQL: recompute every client's cached guest_count and budget",
    ),
    Phase(
        "verify",
        4,
        "playbooks/verify.yml",
        "The data invariants (the runbook's post-run checks), read-only",
        auxiliary=True,
    ),
    Phase(
        "drill",
        2,
        "playbooks/drill.yml",
        "Restore the newest offsite backup into a scratch database and compare it with its manifest",
        auxiliary=True,
        role_name="backup",
    ),
)

# `wfops doctor`: a playbook and role of its own reporting like a phase, but no runbook phase (not in PHASES, not
# accepted by `wfops run`).
DOCTOR = Phase(
    "doctor",
    0,
    "playbooks/doctor.yml",
    "The database as every client reaches it, Dokploy and the app, read-only",
    auxiliary=True,
)

RELEASE_PLAYBOOK = "playbooks/release.yml"
# Must match wfops_release_order in group_vars/all.yml.
RELEASE_ORDER: tuple[str, ...] = ("preflight", "backup", "migrate", "normalize", "deploy", "smoke")

_BY_NAME = {phase.name: phase for phase in PHASES}
# A role maps to the runbook phase it implements (backup, not the drill that reuses it).
_BY_ROLE: dict[str, Phase] = {}
for _phase in (*PHASES, DOCTOR):
    _BY_ROLE.setdefault(_phase.role, _phase)


class UnknownPhaseError(ValueError):
    """A phase name that is not in the registry."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown phase {name!r}; the phases are: {', '.join(_BY_NAME)}")


class NotAReleasePhaseError(ValueError):
    """A --from phase that a release does not run."""

    def __init__(self, name: str) -> None:
        super().__init__(f"--from {name}: not a release phase; a release runs {', '.join(RELEASE_ORDER)}")


def get_phase(name: str) -> Phase:
    """The phase called `name` (dashes or underscores), or UnknownPhaseError."""
    phase = _BY_NAME.get(name) or _BY_ROLE.get(name)
    if phase is None:
        raise UnknownPhaseError(name)
    return phase


def phase_for_role(role: str) -> Phase | None:
    """The phase a role implements, or None for shared roles such as wfops_common."""
    return _BY_ROLE.get(role)


def release_phases(start: str = "preflight") -> tuple[Phase, ...]:
    """The release's phases from `start` on (a resumed release skips the ones before)."""
    phase = get_phase(start)
    if phase.name not in RELEASE_ORDER:
        raise NotAReleasePhaseError(start)
    return tuple(get_phase(name) for name in RELEASE_ORDER[RELEASE_ORDER.index(phase.name) :])
