//! A command's lifetime options checked and prepared on the caller's thread: what the child
//! does (`setsid`, `setpgid`, the parent-death signal), where it starts (its cgroup), and what
//! the executor keeps for it ([`Lifetime`]: deadline, grace, kill scope).

use std::ffi::OsStr;
use std::sync::Arc;

use crate::cgroup::{CgroupDir, MadeCgroup};
use crate::error::{CommandOption, SpawnError, SpawnStage};
use crate::lifetime::{KillScope, Lifetime, LifetimeOptions};
use crate::sys::spawn::{CgroupPlace, LifetimeSteps, ParentDeath};

/// What the lifetime options of one spawn come to.
pub(crate) struct Prepared {
    pub(crate) lifetime: Lifetime,
    pub(crate) steps: LifetimeSteps,
    pub(crate) cgroup: Option<CgroupPlace>,
    /// The cgroup made for this child, removed if the child never comes.
    pub(crate) made_cgroup: Option<MadeCgroup>,
}

/// Checks `options` in this order: process group, session, kill scope, parent-death signal,
/// cgroup. A cgroup made for the child (`cgroup_per_child`) exists once this returns `Ok`, owned
/// by [`Prepared::made_cgroup`]: dropped without a child, it removes the cgroup.
pub(crate) fn prepare(program: &OsStr, options: &LifetimeOptions) -> Result<Prepared, SpawnError> {
    let invalid = |option, reason| SpawnError::InvalidOption {
        program: program.to_os_string(),
        option,
        reason,
    };
    let mut process_group = options.process_group;
    if process_group.is_some_and(|g| g < 0) {
        return Err(invalid(
            CommandOption::ProcessGroup,
            "a process group id is not negative",
        ));
    }
    if options.setsid && process_group.is_some_and(|g| g != 0) {
        return Err(invalid(
            CommandOption::Setsid,
            "a new session makes a new process group; it cannot join another one",
        ));
    }
    if options.scope == KillScope::Group {
        match process_group {
            Some(0) => {}
            Some(_) => {
                return Err(invalid(
                    CommandOption::KillScope,
                    "the Group scope needs the child to lead its group (process_group(0) or \
                     setsid): another group's id is not pinned by the child",
                ));
            }
            None if options.setsid => {}
            None => process_group = Some(0),
        }
    }
    let parent_death = match options.parent_death_signal {
        Some(signal) if !(1..=libc::SIGRTMAX()).contains(&signal) => {
            return Err(invalid(
                CommandOption::ParentDeathSignal,
                "not a signal number",
            ));
        }
        Some(signal) => Some(ParentDeath {
            signal,
            parent: rustix::process::getpid().as_raw_nonzero().get(),
        }),
        None => None,
    };
    if options.cgroup.is_some() && options.cgroup_parent.is_some() {
        return Err(invalid(
            CommandOption::KillScope,
            "cgroup and cgroup_per_child exclude each other",
        ));
    }
    if options.scope == KillScope::Cgroup
        && options.cgroup.is_none()
        && options.cgroup_parent.is_none()
    {
        return Err(invalid(
            CommandOption::KillScope,
            "the Cgroup scope needs cgroup(dir) or cgroup_per_child(parent)",
        ));
    }
    let (dir, owned) = match (&options.cgroup, &options.cgroup_parent) {
        (Some(dir), _) => (Some((dir, CgroupDir::open(dir))), false),
        (None, Some(parent)) => (Some((parent, CgroupDir::create(parent))), true),
        (None, None) => (None, false),
    };
    let mut made_cgroup = None;
    let cgroup = match dir {
        None => None,
        Some((named, opened)) => {
            let failed = |errno| SpawnError::OptionFailed {
                program: program.to_os_string(),
                option: CommandOption::Cgroup(named.clone()),
                stage: SpawnStage::Prepare,
                errno,
            };
            let dir = opened.map_err(failed)?;
            if owned {
                made_cgroup = Some(MadeCgroup::new(dir.path.clone()));
            }
            if options.scope == KillScope::Cgroup
                && let Err(errno) = dir.check_kill()
            {
                return Err(failed(errno));
            }
            Some(dir)
        }
    };
    let lifetime = Lifetime {
        timeout: options.timeout,
        kill_grace: options.kill_grace,
        scope: options.scope,
        cgroup: cgroup.as_ref().map(|c| c.path.clone()),
        owns_cgroup: owned,
        kill_on_drop: options.kill_on_drop,
    };
    Ok(Prepared {
        lifetime,
        steps: LifetimeSteps {
            setsid: options.setsid,
            process_group,
            parent_death,
        },
        cgroup: cgroup.map(|c| CgroupPlace {
            path: c.path,
            dir: Arc::new(c.dir),
        }),
        made_cgroup,
    })
}
