# %preun of the gluten-node-agent .rpm: on erase (not upgrade), disables and stops the units
# (as %systemd_preun does; `disable --now` is newer than EL7's systemd 219).
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl --no-reload disable gluten-node-agent.service gluten-node-aggregator.service >/dev/null 2>&1 || :
    systemctl stop gluten-node-agent.service gluten-node-aggregator.service >/dev/null 2>&1 || :
fi
