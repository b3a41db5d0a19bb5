# %post of the gluten-node-agent .rpm: creates the system user the units run as (from the
# package's sysusers.d entry; useradd where systemd-sysusers is absent or rejects the entry,
# as an old one may). Neither unit is enabled on install: the agent
# listens on 0.0.0.0:9899 and the aggregator needs its token first.
if command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers /usr/lib/sysusers.d/gluten-node-agent.conf >/dev/null 2>&1 || :
fi
if ! getent passwd gluten-node-agent >/dev/null; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /sbin/nologin --comment "Gluten node agent" gluten-node-agent || :
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
