//! [`LightningHandle`]'s on-chain wallet: balances, addresses to fund it, withdrawals,
//! syncing.

use super::error::{ErrorKind, LightningError, Result};
use super::handle::LightningHandle;
use super::summary;
use crate::status::Balances;
use std::str::FromStr;

impl LightningHandle {
    pub fn balances(&self) -> Result<Balances> {
        let node = self.node()?;
        Ok(summary::balances(
            &node.list_balances(),
            &node.list_channels(),
        ))
    }

    /// A fresh on-chain address of the node's wallet, to fund it.
    pub async fn new_onchain_address(&self) -> Result<String> {
        self.blocking(|node| {
            node.onchain_payment()
                .new_address()
                .map(|a| a.to_string())
                .map_err(|e| LightningError::node("Creating an address failed", e))
        })
        .await
    }

    /// Sends on-chain funds out of the wallet (to withdraw them); `None` sends everything
    /// that is not kept back as the reserve for closing channels. Returns the txid.
    pub async fn send_onchain(&self, address: &str, amount_sat: Option<u64>) -> Result<String> {
        let address = self.check_withdrawal(address, amount_sat)?;
        self.blocking(move |node| {
            let payments = node.onchain_payment();
            match amount_sat {
                Some(amount) => payments.send_to_address(&address, amount, None),
                None => payments.send_all_to_address(&address, true, None),
            }
            .map(|txid| txid.to_string())
            .map_err(|e| LightningError::node("Sending on-chain failed", e))
        })
        .await
    }

    /// What [`LightningHandle::send_onchain`] checks before sending (an address of this
    /// network, more than 0 sat), for asking the user to confirm only what can be sent.
    pub fn check_withdrawal(
        &self,
        address: &str,
        amount_sat: Option<u64>,
    ) -> Result<ldk_node::bitcoin::Address> {
        let network = self.shared().settings.network.to_bitcoin();
        let address = ldk_node::bitcoin::Address::from_str(address.trim())
            .map_err(|_| {
                LightningError::new(ErrorKind::InvalidInput, "That is not a Bitcoin address.")
            })?
            .require_network(network)
            .map_err(|_| {
                LightningError::new(
                    ErrorKind::InvalidInput,
                    format!("That address is for another network; this box runs on {network}."),
                )
            })?;
        if amount_sat == Some(0) {
            return Err(LightningError::new(
                ErrorKind::InvalidInput,
                "Send more than 0 sat.",
            ));
        }
        Ok(address)
    }

    /// Makes the on-chain wallet look at the chain now (it also does so on its own).
    pub async fn sync_wallets(&self) -> Result<()> {
        self.blocking(|node| {
            node.sync_wallets()
                .map_err(|e| LightningError::node("Syncing the wallets failed", e))
        })
        .await
    }
}
