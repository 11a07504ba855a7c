//! End-to-end checks that need a crate of their own: `cytodl_experiment!` expanded in a user crate,
//! and the helpers of the end-to-end tests ([`e2e`]).

pub mod e2e;

cytodl_macros::cytodl_experiment!("../configs/experiment/segmentation.yaml");
cytodl_macros::cytodl_experiment!("../configs/experiment/labelfree.yaml", "spatial_dims=2", "data._aux.patch_shape=[32,32]");

/// Every registered component (`configs/experiment/ci/every_component.yaml`), and the variants
/// that use the optimizers and schedulers one experiment cannot hold together.
pub mod every_component {
    cytodl_macros::cytodl_experiment!("../configs/experiment/ci/every_component.yaml");

    /// AdamW with StepLR.
    pub mod adamw_step {
        cytodl_macros::cytodl_experiment!(
            "../configs/experiment/ci/every_component.yaml",
            "model.optimizer.generator._target_=torch.optim.AdamW",
            "model.lr_scheduler.generator._target_=torch.optim.lr_scheduler.StepLR",
            "+model.lr_scheduler.generator.step_size=1"
        );
    }

    /// SGD (Nesterov) with MultiStepLR.
    pub mod sgd_multistep {
        cytodl_macros::cytodl_experiment!(
            "../configs/experiment/ci/every_component.yaml",
            "model.optimizer.generator._target_=torch.optim.SGD",
            "+model.optimizer.generator.momentum=0.9",
            "+model.optimizer.generator.nesterov=true",
            "model.lr_scheduler.generator._target_=torch.optim.lr_scheduler.MultiStepLR",
            "+model.lr_scheduler.generator.milestones=[1,2]"
        );
    }

    /// Adam with CosineAnnealingLR.
    pub mod cosine {
        cytodl_macros::cytodl_experiment!(
            "../configs/experiment/ci/every_component.yaml",
            "model.lr_scheduler.generator._target_=torch.optim.lr_scheduler.CosineAnnealingLR",
            "~model.lr_scheduler.generator.gamma",
            "+model.lr_scheduler.generator.T_max=2"
        );
    }

    /// Adam with OneCycleLR (stepped once per epoch, as cyto_dl's configs do).
    pub mod one_cycle {
        cytodl_macros::cytodl_experiment!(
            "../configs/experiment/ci/every_component.yaml",
            "model.lr_scheduler.generator._target_=torch.optim.lr_scheduler.OneCycleLR",
            "~model.lr_scheduler.generator.gamma",
            "+model.lr_scheduler.generator.max_lr=0.01",
            "+model.lr_scheduler.generator.epochs=2",
            "+model.lr_scheduler.generator.steps_per_epoch=1"
        );
    }
}

/// cyto_dl's GAN family beyond `generated/gan`: super-resolution (GANHead_resize) and a bare
/// GANLoss objective (least squares, no feature matching).
pub mod gan {
    cytodl_macros::cytodl_experiment!("../configs/experiment/gan_superres.yaml");

    /// `gan` with `GANLoss(gan_mode=lsgan)` as its head's adversarial objective.
    pub mod lsgan {
        cytodl_macros::cytodl_experiment!(
            "../configs/experiment/gan.yaml",
            "model._aux._tasks.0.1.gan_loss._target_=cyto_dl.nn.losses.GANLoss",
            "~model._aux._tasks.0.1.gan_loss.scales",
            "+model._aux._tasks.0.1.gan_loss.gan_mode=lsgan"
        );
    }
}

/// The napari plugin's data handling (`configs/experiment/ci/plugin_data.yaml`).
pub mod plugin_data {
    cytodl_macros::cytodl_experiment!("../configs/experiment/ci/plugin_data.yaml");
}

/// cyto_dl's instance segmentation (`configs/experiment/instance_seg.yaml`).
pub mod instance_seg {
    cytodl_macros::cytodl_experiment!("../configs/experiment/instance_seg.yaml");
}
