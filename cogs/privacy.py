"""/privacy: what outagebot keeps about the caller, and forgetting it (after a confirmation)."""

from __future__ import annotations

from bot.core.commands import (
    Button,
    CommandRegistry,
    CommandSpec,
    Context,
    OptionSpec,
    Reply,
    Tone,
)
from bot.core.rich import RichText, When, join_lines, rich
from bot.core.wording import plural
from bot.services.deps import AppDeps
from bot.store import privacy_store
from bot.store.user_hash import load_or_create_salt, user_hash

PLATFORM_NAMES = {"discord": "Discord", "slack": "Slack", "console": "console"}
FORGET = Button(label="🗑️ Forget me", action="privacy forget")
CONFIRM = Button(label="Yes, forget me", action="privacy forget confirm")


def setup(registry: CommandRegistry) -> None:
    """Register /privacy."""
    registry.add(
        CommandSpec(
            name="privacy",
            description="See what this bot keeps about you, or make it forget you",
            handler=privacy,
            options=(
                OptionSpec("action", "show or forget", choices=("show", "forget")),
                OptionSpec("confirm", "forget: type confirm to go ahead", choices=("confirm",)),
            ),
        )
    )


async def privacy(ctx: Context[AppDeps], action: str | None, confirm: str | None) -> Reply:
    """Show the caller's data, ask to confirm forgetting it, or forget it."""
    actor = ctx.invocation.actor
    where = PLATFORM_NAMES.get(actor.platform, actor.platform)
    async with ctx.deps.sessions() as session:
        salt = await load_or_create_salt(session=session, now=ctx.now)
        person = user_hash(actor.platform, actor.user_id, salt=salt)
        # Slack's install record keeps the installer's own id; nothing else holds a clear id.
        slack_id = actor.user_id if actor.platform == "slack" else None
        if action == "forget" and confirm == "confirm":
            done = await privacy_store.forget(
                session=session, person_hash=person, slack_user_id=slack_id
            )
            await session.commit()
            return _forgotten(done, where)
        data = await privacy_store.personal_data(
            session=session, person_hash=person, slack_user_id=slack_id
        )
        await session.commit()  # the salt, if this was the very first use
    if action == "forget":
        return _confirm(data, where)
    return _show(data, where)


def _counts(data: privacy_store.PersonalData) -> list[RichText]:
    lines = [rich(f"• {_n(data.reports, 'problem report')} (/report)")]
    if data.first_report_at and data.last_report_at:
        lines.append(
            rich(
                "  from ",
                When(data.first_report_at, "datetime"),
                " to ",
                When(data.last_report_at, "datetime"),
            )
        )
    lines += [
        rich(f"• {_n(data.votes, 'workaround vote')}"),
        rich(f"• {_n(data.workarounds, 'workaround')} you shared"),
        rich(f"• {_n(data.flags, 'workaround')} you reported as wrong or harmful"),
    ]
    if data.installs:
        lines.append(
            rich(f"• the install record of {_n(data.installs, 'Slack workspace')} (as installer)")
        )
    return lines


_n = plural


def _show(data: privacy_store.PersonalData, where: str) -> Reply:
    lines = [
        rich(
            f"I never store your {where} user id or name, only a salted hash of the id. "
            "Under that hash, in every community I serve:"
        ),
        *_counts(data),
        rich("Channel subscriptions and FAQ entries belong to communities, not to you."),
    ]
    if data.empty:
        return Reply(
            title="What I keep about you",
            body=join_lines([*lines[:1], rich("Nothing at all.")]),
            ephemeral=True,
        )
    return Reply(
        title="What I keep about you",
        body=join_lines(lines),
        footer=rich("/privacy forget deletes your reports and votes; details in docs/privacy.md."),
        buttons=(FORGET,),
        ephemeral=True,
    )


def _confirm(data: privacy_store.PersonalData, where: str) -> Reply:
    if data.empty:
        return Reply(
            body=rich("There is nothing to forget: I keep nothing about you."),
            tone=Tone.OK,
            ephemeral=True,
        )
    return Reply(
        title="Forget you?",
        body=join_lines(
            [
                rich(f"This deletes, in every community, for your {where} account:"),
                rich(
                    f"• {_n(data.reports, 'problem report')} and "
                    f"{_n(data.votes, 'workaround vote')}"
                ),
                *_kept(data.workarounds),
                *(
                    [rich("Slack install records will no longer name you as the installer.")]
                    if data.installs
                    else []
                ),
                rich("It can't be undone. Press the button, or type /privacy forget confirm."),
            ]
        ),
        buttons=(CONFIRM,),
        tone=Tone.WARNING,
        ephemeral=True,
    )


def _kept(workarounds: int) -> list[RichText]:
    if not workarounds:
        return []
    them = "it" if workarounds == 1 else "them"
    return [
        rich(
            f"The {_n(workarounds, 'workaround')} you shared will stay for others, without your "
            f"name; you won't be able to remove {them} afterwards."
        )
    ]


def _forgotten(done: privacy_store.Forgotten, where: str) -> Reply:
    anonymous = done.workarounds_anonymised
    lines = [
        rich(
            f"Done. I deleted {_n(done.reports_deleted, 'problem report')} and "
            f"{_n(done.votes_deleted, 'workaround vote')} of your {where} account."
        )
    ]
    if anonymous:
        verb = "names" if anonymous == 1 else "name"
        lines.append(rich(f"The {_n(anonymous, 'workaround')} you shared no longer {verb} you."))
    if done.installs_cleared:
        lines.append(rich("Slack install records no longer name you as the installer."))
    lines.append(rich("Anything you do from now on is counted afresh."))
    return Reply(title="Forgotten", body=join_lines(lines), tone=Tone.OK, ephemeral=True)
