package cli

import "mhrun/formation"

// ProjectFlags say where the formation is; start, check and run share them.
type ProjectFlags struct {
	Procfile    string   `short:"f" placeholder:"FILE" help:"Procfile to run (default: Procfile in the project dir)."`
	Policy      string   `placeholder:"FILE" help:"Policy file (default: the Procfile's path plus .policy)."`
	Env         []string `short:"e" placeholder:"FILE" help:"Env file read after .env; repeatable, later files win."`
	Formation   []string `short:"m" placeholder:"NAME=N,…" help:"Scale override, e.g. -m web=2,worker=1 (N may be max)."`
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
