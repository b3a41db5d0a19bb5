# %postun of the gluten-node-agent .rpm: systemd rereads the units; after an upgrade the units
# that were running restart on the new binary (as %systemd_postun_with_restart does).
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart gluten-node-agent.service gluten-node-aggregator.service >/dev/null 2>&1 || :
    fi
fi
