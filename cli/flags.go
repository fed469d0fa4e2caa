package cli

import "mhrun/formation"

// ProjectFlags say where the formation is; start, check and run share them.
// -m (Formation) follows foreman: given, it is the whole formation, and the
// policy's scale= counts only without it; formation.ParseScales has the
// rules.
type ProjectFlags struct {
	Procfile    string   `short:"f" placeholder:"FILE" help:"Procfile to run (default: Procfile in the project dir)."`
	Policy      string   `placeholder:"FILE" help:"Policy file (default: the Procfile's path plus .policy)."`
	Env         []string `short:"e" placeholder:"FILE" help:"Env file read after .env; repeatable, later files win."`
	Formation   []string `short:"m" placeholder:"NAME=N,…" help:"The formation, as foreman's -m: run these counts and no other process (-m web=2), all=N for every process not named (-m all=1,worker=0); N may be max. Without -m, each process runs its scale=."`
	Port        int      `short:"p" placeholder:"PORT" help:"Base port (default: PORT from env files, then environment, then 5000)."`
	Dir         string   `short:"d" placeholder:"DIR" help:"Project dir (default: the current dir)."`
	EnvOverride bool     `help:"Env files win over the real environment."`
}

// load resolves the formation these flags describe.
func (p *ProjectFlags) load(only []string) (*formation.Formation, error) {
	return formation.Load(formation.Options{
		Dir:         p.Dir,
		Procfile:    p.Procfile,
		Policy:      p.Policy,
		EnvFiles:    p.Env,
		Scale:       p.Formation,
		Only:        only,
		BasePort:    p.Port,
		EnvOverride: p.EnvOverride,
	})
}
