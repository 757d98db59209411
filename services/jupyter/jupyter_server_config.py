# JupyterLab's server settings (services/jupyter/service.py starts it with this file). Address and
# port come from the service (LAKELAB_JUPYTER_IP, LAKELAB_JUPYTER_PORT: 127.0.0.1 natively, every
# interface of its container in compose mode); the token from the JUPYTER_TOKEN environment variable, which
# the service fills from LAKELAB_JUPYTER_TOKEN of the env file: it is in no file and on no
# command line, and the server's log shows it as "...".
import os

c = get_config()  # noqa: F821 - defined by Jupyter when it loads this file

c.ServerApp.ip = os.environ["LAKELAB_JUPYTER_IP"]
c.ServerApp.port = int(os.environ["LAKELAB_JUPYTER_PORT"])
c.ServerApp.port_retries = 0            # a taken port is an error, not another port
c.ServerApp.open_browser = False
c.ServerApp.allow_remote_access = False
c.ServerApp.root_dir = os.environ["LAKELAB_NOTEBOOKS_DIR"]
c.ServerApp.terminals_enabled = True    # a shell for `lakelab ...` commands beside the notebooks
c.ServerApp.allow_root = True           # CI containers run as root; the server still binds locally
c.ServerApp.shutdown_no_activity_timeout = 0
c.IdentityProvider.token = os.environ["JUPYTER_TOKEN"]
c.PasswordIdentityProvider.allow_password_change = False
# offline: no news feed, no update check, no extension manager reaching a package index
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
c.LabApp.extension_manager = "readonly"
