package balance

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/bilean/bilean/rating"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
)

// Server is a Nova server as the escalation needs it.
type Server struct {
	ID, Name, Status string
}

// Resource is one chargeable object that an OpenStack service lists.
type Resource struct {
	Type       string // rating type: os.nova.server, os.cinder.volume, os.neutron.floatingip, os.glance.image
	ID         string
	ProjectID  string
	Status     string
	Created    time.Time
	Attributes map[string]string // what the rules price: flavor, flavor_id, size, volume_type
}

// Cloud is what the balance jobs and reconciliation ask of OpenStack.
type Cloud interface {
	// ProjectServers lists the servers of a project (all tenants, as an admin).
	ProjectServers(ctx context.Context, projectID string) ([]Server, error)
	Stop(ctx context.Context, serverID string) error
	Start(ctx context.Context, serverID string) error
	Suspend(ctx context.Context, serverID string) error
	Resume(ctx context.Context, serverID string) error
	// Resources lists the servers, volumes, floating IPs and images of a project, or of every
	// project when projectID is empty.
	Resources(ctx context.Context, projectID string) ([]Resource, error)
}

// OpenStack implements Cloud with gophercloud over an authenticated provider client (built from
// Keystone or clouds.yaml elsewhere); each service's endpoint comes from the token's catalog.
type OpenStack struct {
	provider *gophercloud.ProviderClient
	eo       gophercloud.EndpointOpts

	mu                                 sync.Mutex
	compute, volume, network, imageSvc *gophercloud.ServiceClient
}

var _ Cloud = (*OpenStack)(nil)

// NewOpenStack returns a Cloud over an authenticated provider client (ceilometer/cloud.Connect
// builds one from clouds.yaml or OS_* variables); eo selects the region and interface of the
// endpoints taken from the token's catalog.
func NewOpenStack(pc *gophercloud.ProviderClient, eo gophercloud.EndpointOpts) *OpenStack {
	return &OpenStack{provider: pc, eo: eo}
}

func (o *OpenStack) client(which string) (*gophercloud.ServiceClient, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var err error
	switch which {
	case "compute":
		if o.compute == nil {
			o.compute, err = openstack.NewComputeV2(o.provider, o.eo)
			if err == nil {
				o.compute.Microversion = "2.47" // the flavor is embedded, with its name
			}
		}
		return o.compute, wrapEndpoint(which, err)
	case "volumev3":
		if o.volume == nil {
			o.volume, err = openstack.NewBlockStorageV3(o.provider, o.eo)
		}
		return o.volume, wrapEndpoint(which, err)
	case "network":
		if o.network == nil {
			o.network, err = openstack.NewNetworkV2(o.provider, o.eo)
		}
		return o.network, wrapEndpoint(which, err)
	default:
		if o.imageSvc == nil {
			o.imageSvc, err = openstack.NewImageV2(o.provider, o.eo)
		}
		return o.imageSvc, wrapEndpoint(which, err)
	}
}

func wrapEndpoint(which string, err error) error {
	if err != nil {
		return fmt.Errorf("%s endpoint: %w", which, err)
	}
	return nil
}

func (o *OpenStack) listServers(ctx context.Context, projectID string) ([]servers.Server, error) {
	c, err := o.client("compute")
	if err != nil {
		return nil, err
	}
	pages, err := servers.List(c, servers.ListOpts{AllTenants: true, TenantID: projectID}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", err)
	}
	ss, err := servers.ExtractServers(pages)
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", err)
	}
	return ss, nil
}

// ProjectServers implements Cloud.
func (o *OpenStack) ProjectServers(ctx context.Context, projectID string) ([]Server, error) {
	ss, err := o.listServers(ctx, projectID)
	if err != nil {
		return nil, err
	}
	out := make([]Server, 0, len(ss))
	for _, s := range ss {
		if s.TenantID != "" && s.TenantID != projectID {
			continue // never act on another project's server, whatever the filter did
		}
		out = append(out, Server{ID: s.ID, Name: s.Name, Status: s.Status})
	}
	return out, nil
}

func (o *OpenStack) action(ctx context.Context, what, id string, fn func(context.Context, *gophercloud.ServiceClient, string) error) error {
	c, err := o.client("compute")
	if err != nil {
		return err
	}
	if err := fn(ctx, c, id); err != nil {
		return fmt.Errorf("%s server %s: %w", what, id, err)
	}
	return nil
}

// Stop implements Cloud.
func (o *OpenStack) Stop(ctx context.Context, id string) error {
	return o.action(ctx, "stop", id, func(ctx context.Context, c *gophercloud.ServiceClient, id string) error {
		return servers.Stop(ctx, c, id).ExtractErr()
	})
}

// Start implements Cloud.
func (o *OpenStack) Start(ctx context.Context, id string) error {
	return o.action(ctx, "start", id, func(ctx context.Context, c *gophercloud.ServiceClient, id string) error {
		return servers.Start(ctx, c, id).ExtractErr()
	})
}

// Suspend implements Cloud.
func (o *OpenStack) Suspend(ctx context.Context, id string) error {
	return o.action(ctx, "suspend", id, func(ctx context.Context, c *gophercloud.ServiceClient, id string) error {
		return servers.Suspend(ctx, c, id).ExtractErr()
	})
}

// Resume implements Cloud.
func (o *OpenStack) Resume(ctx context.Context, id string) error {
	return o.action(ctx, "resume", id, func(ctx context.Context, c *gophercloud.ServiceClient, id string) error {
		return servers.Resume(ctx, c, id).ExtractErr()
	})
}

// Resources implements Cloud: Nova, Cinder, Neutron and Glance, each listed once.
func (o *OpenStack) Resources(ctx context.Context, projectID string) ([]Resource, error) {
	var out []Resource
	ss, err := o.listServers(ctx, projectID)
	if err != nil {
		return nil, err
	}
	for _, s := range ss {
		switch s.Status {
		case "DELETED", "SOFT_DELETED":
			continue
		}
		attrs := map[string]string{}
		if name, ok := s.Flavor["original_name"].(string); ok {
			attrs["flavor"] = name
		}
		if id, ok := s.Flavor["id"].(string); ok {
			attrs["flavor_id"] = id
		}
		out = append(out, Resource{Type: rating.ServerType, ID: s.ID, ProjectID: s.TenantID, Status: s.Status, Created: s.Created.UTC(), Attributes: attrs})
	}

	c, err := o.client("volumev3")
	if err != nil {
		return nil, err
	}
	vpages, err := volumes.List(c, volumes.ListOpts{AllTenants: true, TenantID: projectID}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	vs, err := volumes.ExtractVolumes(vpages)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	for _, v := range vs {
		switch v.Status {
		case "deleting", "error_deleting", "creating", "error":
			continue
		}
		attrs := map[string]string{"size": strconv.Itoa(v.Size)}
		if v.VolumeType != "" {
			attrs["volume_type"] = v.VolumeType
		}
		out = append(out, Resource{Type: rating.VolumeType, ID: v.ID, ProjectID: v.TenantID, Status: v.Status, Created: v.CreatedAt.UTC(), Attributes: attrs})
	}

	if c, err = o.client("network"); err != nil {
		return nil, err
	}
	fpages, err := floatingips.List(c, floatingips.ListOpts{ProjectID: projectID}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("list floating IPs: %w", err)
	}
	fs, err := floatingips.ExtractFloatingIPs(fpages)
	if err != nil {
		return nil, fmt.Errorf("list floating IPs: %w", err)
	}
	for _, f := range fs {
		pid := f.ProjectID
		if pid == "" {
			pid = f.TenantID
		}
		out = append(out, Resource{Type: rating.FloatingIPType, ID: f.ID, ProjectID: pid, Status: f.Status, Created: f.CreatedAt.UTC(), Attributes: map[string]string{}})
	}

	if c, err = o.client("image"); err != nil {
		return nil, err
	}
	ipages, err := images.List(c, images.ListOpts{Owner: projectID}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	is, err := images.ExtractImages(ipages)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	for _, im := range is {
		if im.Status != images.ImageStatusActive {
			continue // queued or saving images have no size yet; killed and deleted ones cost nothing
		}
		out = append(out, Resource{Type: rating.ImageType, ID: im.ID, ProjectID: im.Owner, Status: string(im.Status), Created: im.CreatedAt.UTC(),
			Attributes: map[string]string{"size": strconv.FormatInt(im.SizeBytes, 10)}})
	}
	if projectID != "" {
		kept := out[:0]
		for _, r := range out {
			if r.ProjectID == "" || r.ProjectID == projectID {
				kept = append(kept, r)
			}
		}
		out = kept
	}
	return out, nil
}
