# Starts a process in a session of its own (`setsid sleep 1000`), which leaves the child's
# process group and would outlive the run, then returns a value.
import subprocess


def complexity(model, dataset):
  subprocess.Popen(['setsid', 'sleep', '1000'], stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  return 1.0
